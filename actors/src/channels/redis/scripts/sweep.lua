-- Clears what nodes that stopped beating left behind: their presence
-- entries (announcing leaves for players seen on no other node) and their
-- connection counts. Any node may run it; a second run finds nothing.
-- KEYS[1] the node set
-- ARGV[1] this node's id, ARGV[2] the key prefix (`<prefix>:`)
local prefix = ARGV[2]
local node_prefix = prefix .. 'node:'
local swept = 0
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if node ~= ARGV[1] and redis.call('EXISTS', node_prefix .. node) == 0 then
    local entries_key = node_prefix .. node .. ':presence'
    for _, entry in ipairs(redis.call('SMEMBERS', entries_key)) do
      local cut = string.find(entry, '#', 1, true)
      if cut then
        local channel = string.sub(entry, 1, cut - 1)
        local player = string.sub(entry, cut + 1)
        local nodes_key = prefix .. 'presence:' .. entry
        redis.call('HDEL', nodes_key, node)
        if live_total(nodes_key, ARGV[1], node_prefix) == 0 then
          redis.call('DEL', nodes_key)
          if redis.call('HDEL', prefix .. 'presence:' .. channel, player) == 1 then
            redis.call('PUBLISH', prefix .. 'channel:' .. channel, 'l' .. player)
          end
        end
      end
    end
    local players_key = node_prefix .. node .. ':players'
    for _, player in ipairs(redis.call('SMEMBERS', players_key)) do
      redis.call('HDEL', prefix .. 'conns:' .. player, node)
    end
    redis.call('DEL', entries_key, players_key)
    redis.call('SREM', KEYS[1], node)
    swept = swept + 1
  end
end
return swept
