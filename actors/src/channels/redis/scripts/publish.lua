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
return {offset, epoch}
