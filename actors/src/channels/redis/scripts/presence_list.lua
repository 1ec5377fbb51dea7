-- The players in a channel with their connections on live nodes, as a flat
-- list: player, display name, connections.
-- KEYS[1] the channel's members hash
-- ARGV[1] the prefix of the players' nodes hashes (`...presence:<channel>#`)
-- ARGV[2] heartbeat key prefix
local members = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #members, 2 do
  local nodes = redis.call('HGETALL', ARGV[1] .. members[i])
  local total = 0
  for j = 1, #nodes, 2 do
    if redis.call('EXISTS', ARGV[2] .. nodes[j]) == 1 then
      total = total + tonumber(nodes[j + 1])
    end
  end
  if total > 0 then
    out[#out + 1] = members[i]
    out[#out + 1] = members[i + 1]
    out[#out + 1] = tostring(total)
  end
end
return out
