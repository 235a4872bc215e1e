-- Read a job's log after a cursor, in one atomic step.
-- KEYS: job, log, snap
-- ARGV: after, limit ('' for none)
-- Returns {last seq, status, entries}, then 'snap', snapshot when the snapshot
-- stands in for trimmed entries, or 'end', terminal chunk when the log is gone.
-- Errors NOJOB, or AHEAD <last seq> when the cursor is ahead of the log.
local state = redis.call('HMGET', KEYS[1], 'status', 'last_seq')
if not state[1] then
  return redis.error_reply('NOJOB')
end
local status, last = state[1], tonumber(state[2])
local after = tonumber(ARGV[1])
if after > last then
  return redis.error_reply('AHEAD ' .. last)
end
local limit = tonumber(ARGV[2])
if after == last or limit == 0 then
  return {last, status, {}}
end

local function range(from, count)
  if count then
    return redis.call('XRANGE', KEYS[2], (from + 1) .. '-0', '+', 'COUNT', count)
  end
  return redis.call('XRANGE', KEYS[2], (from + 1) .. '-0', '+')
end

local entries = range(after, limit)
if #entries == 0 then
  -- The last entry is never trimmed, so the log is gone: the job finished and
  -- its chunks were dropped. Only the terminal chunk remains, in the record.
  return {last, status, {}, 'end', redis.call('HGET', KEYS[1], 'terminal')}
end
if entries[1][1] == (after + 1) .. '-0' then
  return {last, status, entries}
end

-- The cursor fell behind the capped log: the snapshot stands in for the gap,
-- unless it is older than the cursor. It never replaces the terminal chunk.
local snap = redis.call('GET', KEYS[3])
if not snap then
  return {last, status, entries}
end
local seq = tonumber(string.match(snap, '^%d+'))
local newest = last
if status ~= 'running' then
  newest = last - 1
end
if seq <= after or seq > newest then
  return {last, status, entries}
end
if limit == 1 then
  return {last, status, {}, 'snap', snap}
end
return {last, status, range(seq, limit and limit - 1), 'snap', snap}
