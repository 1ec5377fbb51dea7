-- A player's decision on a tool call that waits on some node.
-- KEYS[1] the call's approval key
-- ARGV[1] "wait:<player>", as the waiting node wrote it
-- ARGV[2] the decision, "yes" or "no"
-- Returns 1 when the call waits for this player (and now holds the
-- decision), 0 otherwise (no such call, another player's, or decided).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
