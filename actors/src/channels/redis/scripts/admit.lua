-- Admits one more connection of a player unless the player already has the
-- limit across the cluster's live nodes.
-- KEYS[1] the player's connections hash (node -> count)
-- KEYS[2] the node's own set of players with connections
-- ARGV[1] node id, ARGV[2] limit, ARGV[3] player, ARGV[4] heartbeat key prefix
if live_total(KEYS[1], ARGV[1], ARGV[4]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[2], ARGV[3])
return 1
