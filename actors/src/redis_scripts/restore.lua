-- Writes back a node's count of a player's connections, after Redis lost
-- it (a restart, or the node was taken for dead while it stalled).
-- KEYS[1] the player's connections hash, KEYS[2] the node's players set
-- ARGV[1] node id, ARGV[2] player, ARGV[3] connections
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[2])
return 1
