-- One connection of a player on this node closed.
-- KEYS[1] the player's connections hash, KEYS[2] the node's players set
-- ARGV[1] node id, ARGV[2] player
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
end
return 1
