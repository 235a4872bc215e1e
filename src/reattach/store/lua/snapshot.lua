-- Keep a job's snapshot unless a newer one is kept already.
-- KEYS: job, snap
-- ARGV: seq, snapshot ("<seq>\n<json>"), running TTL (ms)
-- Returns 1 when kept, 0 when older; errors NOJOB, or AHEAD <last seq>.
local state = redis.call('HMGET', KEYS[1], 'status', 'last_seq')
if not state[1] then
  return redis.error_reply('NOJOB')
end
local seq = tonumber(ARGV[1])
if seq > tonumber(state[2]) then
  return redis.error_reply('AHEAD ' .. state[2])
end
local old = redis.call('GET', KEYS[2])
if old and tonumber(string.match(old, '^%d+')) > seq then
  return 0
end
local ttl = tonumber(ARGV[3])
if state[1] ~= 'running' then
  ttl = redis.call('PTTL', KEYS[1])
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', math.max(ttl, 1))
return 1
