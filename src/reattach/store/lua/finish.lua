-- Move a job out of running: the one compare-and-set, with the terminal chunk.
-- KEYS: job, log, steps, snap
-- ARGV: publish command, bell channel, mode ('finish' or 'reap'), status,
--       error as JSON ('' for none), terminal chunk, final event as JSON ('' for
--       none), completed TTL (ms), log TTL (ms), run steps TTL (ms), log cap,
--       call id
-- Mode 'reap' ends the job only when its lease has expired.
-- Returns {0} no job; {1, status, record expiry, user id} already finished;
-- {2, lease expiry} lease still fresh; {3, seq, record expiry, user id} ended.
local job = KEYS[1]
local state = redis.call('HMGET', job, 'status', 'last_seq', 'lease_expires_at',
  'user_id', 'call')
if not state[1] then
  return {0}
end
local time = redis.call('TIME')
local now = time[1] * 1000 + math.floor(time[2] / 1000)
local call = ARGV[12] .. ' '
if state[1] ~= 'running' then
  local expiry = now + math.max(redis.call('PTTL', job), 0)
  if state[5] and string.sub(state[5], 1, #call) == call then
    -- This very call won, and redis-py sent it again after a timeout.
    return {3, tonumber(state[2]), expiry, state[4]}
  end
  return {1, state[1], expiry, state[4]}
end
if ARGV[3] == 'reap' and state[3] and tonumber(state[3]) > now then
  return {2, tonumber(state[3])}
end

local seq = tonumber(state[2]) + 1
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[11], seq .. '-0', 'e', ARGV[6])
redis.call('HSET', job, 'status', ARGV[4], 'last_seq', seq, 'completed_at', now,
  'updated_at', now, 'terminal', ARGV[6], 'call', call .. seq)
redis.call('HDEL', job, 'lease_owner', 'lease_expires_at')
if ARGV[5] == '' then
  redis.call('HDEL', job, 'error')
else
  redis.call('HSET', job, 'error', ARGV[5])
end
if ARGV[7] ~= '' then
  redis.call('HSET', job, 'final_event', ARGV[7])
end

local function keep(key, ttl)
  if ttl == '0' then
    redis.call('DEL', key)
  else
    redis.call('PEXPIRE', key, ttl)
  end
end
redis.call('PEXPIRE', job, ARGV[8])
keep(KEYS[2], ARGV[9])
keep(KEYS[3], ARGV[10])
-- The snapshot lives as long as the record: it is the content of a late reader.
redis.call('PEXPIRE', KEYS[4], ARGV[8])
redis.call(ARGV[1], ARGV[2], seq .. ' end')
return {3, seq, now + tonumber(ARGV[8]), state[4]}
