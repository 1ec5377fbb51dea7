-- Sets how many connections a player has in a channel on one node, and
-- announces a join when the player appears on the first node and a leave
-- when it is gone from the last: once per player across the cluster.
-- KEYS[1] the channel's members hash (player -> display name)
-- KEYS[2] the player's nodes hash in the channel (node -> connections)
-- KEYS[3] the node's own list of its presence entries
-- ARGV[1] node id, ARGV[2] player, ARGV[3] display name ('' for none)
-- ARGV[4] connections, ARGV[5] heartbeat key prefix
-- ARGV[6] the channel's pub/sub channel, ARGV[7] the entry `<channel>#<player>`
local before = live_total(KEYS[2], ARGV[1], ARGV[5])
if tonumber(ARGV[4]) > 0 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  redis.call('SADD', KEYS[3], ARGV[7])
else
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[7])
end
local after = live_total(KEYS[2], ARGV[1], ARGV[5])
if after == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('HDEL', KEYS[1], ARGV[2])
end
if before == 0 and after > 0 then
  redis.call('PUBLISH', ARGV[6], 'j' .. ARGV[2])
elseif before > 0 and after == 0 then
  redis.call('PUBLISH', ARGV[6], 'l' .. ARGV[2])
end
return after
