-- Assigns the channel's next offset, appends to its history and announces
-- the publication to every node, atomically: the announcements go out in
-- offset order.
-- KEYS[1] the channel's position hash (epoch, offset)
-- KEYS[2] the channel's history stream, entry ids are `<offset>-0`
-- ARGV[1] the epoch to start with when the channel has none
-- ARGV[2] the publication body (JSON)
-- ARGV[3] history size (0: keep none)
-- ARGV[4] history time to live, ms
-- ARGV[5] position time to live, ms
-- ARGV[6] the pub/sub channel of the Hearth channel
-- A player's publication is held to the budgets first (the server's are
-- not: ARGV[7] is '' for them):
-- KEYS[3] the bytes the player's publications added to history in this
--         window, KEYS[4] the bytes all players' added, KEYS[5] the
--         channels the player created this minute
-- ARGV[7] the player, or ''
-- ARGV[8] the bytes this publication adds to history (0 when none is kept)
-- ARGV[9] bytes per player, ARGV[10] bytes in all, per window
-- ARGV[11] the window, ms (the longest history time to live: what was
--          counted in it may still be held)
-- ARGV[12] channels a player may create per minute
-- Returns {offset, epoch}, or {-1, 'player' | 'total' | 'channels'} when a
-- budget refuses it.
local player = ARGV[7] ~= ''
local size = tonumber(ARGV[8])
local creates = false
if player then
  local latest = redis.call('HGET', KEYS[1], 'offset')
  creates = (not latest) or tonumber(latest) == 0
  if creates and tonumber(redis.call('GET', KEYS[5]) or '0') >= tonumber(ARGV[12]) then
    return {-1, 'channels'}
  end
  if size > 0 then
    if tonumber(redis.call('GET', KEYS[4]) or '0') + size > tonumber(ARGV[10]) then
      return {-1, 'total'}
    end
    if tonumber(redis.call('GET', KEYS[3]) or '0') + size > tonumber(ARGV[9]) then
      return {-1, 'player'}
    end
  end
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  -- A history left from an earlier epoch has ids this one would repeat.
  redis.call('DEL', KEYS[2])
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local text = string.format('%d', offset)
if tonumber(ARGV[3]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], text .. '-0', 'b', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[6], 'p' .. text .. ' ' .. epoch .. ' ' .. ARGV[2])
-- Counters start their window (or minute) with their first count.
if player then
  if creates and redis.call('INCR', KEYS[5]) == 1 then
    redis.call('PEXPIRE', KEYS[5], 60000)
  end
  if size > 0 then
    if redis.call('INCRBY', KEYS[3], size) == size then
      redis.call('PEXPIRE', KEYS[3], ARGV[11])
    end
    if redis.call('INCRBY', KEYS[4], size) == size then
      redis.call('PEXPIRE', KEYS[4], ARGV[11])
    end
  end
end
return {offset, epoch}
