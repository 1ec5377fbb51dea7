-- Sets this node's count of a player's connections outright, when the
-- node resyncs its state with Redis; 0 removes it.
-- KEYS[1] the player's connections hash, KEYS[2] the node's players set
-- ARGV[1] node id, ARGV[2] player, ARGV[3] connections
if tonumber(ARGV[3]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  redis.call('SADD', KEYS[2], ARGV[2])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
end
return 1
