-- Create a running job record, with its lease and TTL, unless the id is taken.
-- KEYS: job
-- ARGV: running TTL (ms), call id, then field, value pairs of the record
-- Returns {created_at (ms), created_at (us)}; error EXISTS when the id is taken
-- (but by this very call, sent again after a timeout).
local call = ARGV[2] .. ' 0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'call') == call then
    return redis.call('HMGET', KEYS[1], 'created_at', 'created_us')
  end
  return redis.error_reply('EXISTS')
end
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
local us = now[1] .. string.format('%06d', now[2])
local ttl = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'running', 'last_seq', 0, 'call', call,
  'created_at', ms, 'updated_at', ms, 'created_us', us,
  'lease_expires_at', ms + ttl, unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ttl)
return {ms, us}
