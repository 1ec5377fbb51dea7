-- The channel's position and, when the client's epoch is current, the
-- history after its offset, read in one step so the two agree.
-- KEYS[1] the channel's position hash, KEYS[2] its history stream
-- ARGV[1] the epoch to start with when the channel has none
-- ARGV[2] position time to live, ms
-- ARGV[3] the client's offset, or '' for the position only
-- ARGV[4] the client's epoch
-- ARGV[5] time to live, ms, of a position nobody has published to
-- ARGV[6] the most publications to read: a client that missed more is
--         not recovered, and its tail is not read
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local offset = 0
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  redis.call('DEL', KEYS[2])
else
  offset = tonumber(redis.call('HGET', KEYS[1], 'offset'))
end
-- A position only read, never published to, keeps for a short while: a
-- client subscribing to ever new names must not fill Redis for an hour.
if offset == 0 then
  redis.call('PEXPIRE', KEYS[1], math.min(tonumber(ARGV[2]), tonumber(ARGV[5])))
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local flat = {}
if ARGV[3] ~= '' and ARGV[4] == epoch
    and offset - tonumber(ARGV[3]) <= tonumber(ARGV[6]) then
  local from = string.format('%d', tonumber(ARGV[3]) + 1)
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], from, '+')) do
    flat[#flat + 1] = entry[1]
    flat[#flat + 1] = entry[2][2]
  end
end
return {epoch, offset, flat}
