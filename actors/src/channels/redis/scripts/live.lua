-- Shared by the scripts below: sums the connections a hash of
-- node -> count holds on nodes that are alive (their heartbeat key exists),
-- and deletes the fields of nodes that are not. `self` is the calling node,
-- alive by definition even before its first heartbeat lands.
local function live_total(key, self, node_prefix)
  local total = 0
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    local node = fields[i]
    if node == self or redis.call('EXISTS', node_prefix .. node) == 1 then
      total = total + tonumber(fields[i + 1])
    else
      redis.call('HDEL', key, node)
    end
  end
  return total
end
