-- Keeps the node alive for another time to live; answers 1 when the node
-- was not in the node set, which after the first beat means Redis lost
-- the node's state.
-- KEYS[1] the node's heartbeat key, KEYS[2] the node set
-- ARGV[1] node id, ARGV[2] time to live, ms
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
return redis.call('SADD', KEYS[2], ARGV[1])
