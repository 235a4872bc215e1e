-- Update one index sorted set and refresh its TTL, in one write.
-- KEYS: index
-- ARGV: TTL (ms), prune ('1': scores are expiry times, drop the past ones),
--       op ('add', 'nx', 'xx', 'rem' or ''), score, member
-- Returns what ZADD or ZREM returned, or for op '' the number of members.
local key, op = KEYS[1], ARGV[3]
if ARGV[2] == '1' then
  local time = redis.call('TIME')
  local now = time[1] * 1000 + math.floor(time[2] / 1000)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
end
local changed = 0
if op == 'add' then
  changed = redis.call('ZADD', key, ARGV[4], ARGV[5])
elseif op == 'nx' then
  changed = redis.call('ZADD', key, 'NX', ARGV[4], ARGV[5])
elseif op == 'xx' then
  changed = redis.call('ZADD', key, 'XX', ARGV[4], ARGV[5])
elseif op == 'rem' then
  changed = redis.call('ZREM', key, ARGV[5])
end
redis.call('PEXPIRE', key, ARGV[1])
if op == '' then
  return redis.call('ZCARD', key)
end
return changed
