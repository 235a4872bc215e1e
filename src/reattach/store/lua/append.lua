-- Append a batch of events to a running job's log, in one atomic step.
-- KEYS: job, log, steps, snap
-- ARGV: publish command, bell channel, running TTL (ms), log cap, call id, event...
-- Returns the last seq; errors NOJOB or FINISHED when the job cannot take events.
-- A call id seen in the last call to the job means redis-py sent this call again
-- after a timeout: the batch is in already, so nothing is appended twice.
local state = redis.call('HMGET', KEYS[1], 'status', 'last_seq', 'call')
if not state[1] then
  return redis.error_reply('NOJOB')
end
local call = ARGV[5] .. ' '
if state[3] and string.sub(state[3], 1, #call) == call then
  return tonumber(string.sub(state[3], #call + 1))
end
if state[1] ~= 'running' then
  return redis.error_reply('FINISHED ' .. state[1])
end
local seq = tonumber(state[2])
if #ARGV == 5 then
  return seq
end

local log, cap = KEYS[2], ARGV[4]
for i = 6, #ARGV do
  seq = seq + 1
  -- The entry id carries the seq, so a reader asks XRANGE for a seq directly.
  redis.call('XADD', log, 'MAXLEN', '~', cap, seq .. '-0', 'e', ARGV[i])
end

local now = redis.call('TIME')
redis.call('HSET', KEYS[1], 'last_seq', seq, 'call', call .. seq,
  'updated_at', now[1] * 1000 + math.floor(now[2] / 1000))
-- The running TTL slides from the last append.
for i = 1, 4 do
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
redis.call(ARGV[1], ARGV[2], seq)
return seq
