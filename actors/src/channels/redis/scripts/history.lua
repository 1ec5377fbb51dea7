-- History entries from one offset to another, both included, for a node
-- that saw a gap in the live publications it received.
-- KEYS[1] the history stream; ARGV[1] first offset, ARGV[2] last offset
local flat = {}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2] .. '-0')) do
  flat[#flat + 1] = entry[1]
  flat[#flat + 1] = entry[2][2]
end
return flat
