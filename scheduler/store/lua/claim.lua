-- Claim due slots under the fencing token, and (same-Redis broker) enqueue them in the same step.
-- KEYS[1] lease, KEYS[2] watermarks, KEYS[3] last_fire, KEYS[4] history, KEYS[5] missed,
-- KEYS[6] paused, KEYS[7] paused_skips, KEYS[8] outbox, KEYS[9] missed_open
-- ARGV[1] our lease value, ARGV[2] our token, ARGV[3] stream cap,
-- ARGV[4] outbox cap: 0 when the broker is this Redis (the message comes with the fire),
-- else claimed slots are appended to the outbox, and refused once it holds that many;
-- ARGV[5] number of missed ranges M, then M groups of 5: job, first, last, count, reason;
-- then the number of fires F, then F groups of 4: job, slot (epoch s),
-- queue key ('' = the caller publishes after the claim), message ('' = none).
-- Missed ranges come first: they are older than any fire of the same job in the batch.
-- Returns {0} when the lease is not ours; else {1, s1, ..., sF}, one status per fire:
-- 1 claimed now, 2 paused, 3 already ours (this token claimed it: a resent claim), 0 taken
-- earlier by another token, 4 not claimed because the outbox is full.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0}
end
local token, cap = ARGV[2], ARGV[3]
local outbox_cap = tonumber(ARGV[4])

-- Newest slot per job as this script sees it: Redis, plus what this script wrote.
local marks = {}
local function watermark(job)
  local mark = marks[job]
  if mark == nil then
    mark = tonumber(redis.call('HGET', KEYS[2], job) or '-1') or -1
    marks[job] = mark
  end
  return mark
end

-- Writes are gathered and sent as a few variadic commands (a burst claims 1,000 slots a call).
local function flush(command, key, values)
  for first = 1, #values, 1000 do
    redis.call(command, key, unpack(values, first, math.min(first + 999, #values)))
  end
end

local i = 6
for _ = 1, tonumber(ARGV[5]) do
  local job, first, last, count, reason = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  if watermark(job) < tonumber(last) then
    redis.call('HSET', KEYS[2], job, last)
    marks[job] = tonumber(last)
    if reason == 'outbox_full' then
      -- A gap that goes on tick after tick stays one open range until the job fires again.
      local open = redis.call('HGET', KEYS[9], job)
      if open then
        local first0, _, count0 = string.match(open, '^(%d+) (%d+) (%d+)')
        first, count = first0, tostring(tonumber(count0) + tonumber(count))
      end
      redis.call('HSET', KEYS[9], job, first .. ' ' .. last .. ' ' .. count .. ' ' .. reason)
    else
      redis.call('XADD', KEYS[5], 'MAXLEN', '~', cap, '*', 'job', job, 'first', first,
        'last', last, 'count', count, 'reason', reason, 'token', token)
    end
  end
end

local out = {1}
local any_paused = redis.call('SCARD', KEYS[6]) > 0
local any_open = redis.call('HLEN', KEYS[9]) > 0
local new_marks, new_last, pushes, queues = {}, {}, {}, {}
local fires = tonumber(ARGV[i])
i = i + 1
for _ = 1, fires do
  local job, slot, queue, message = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  local slot_n = tonumber(slot)
  if watermark(job) >= slot_n then
    if redis.call('HGET', KEYS[3], job) == slot .. ' ' .. token then
      out[#out + 1] = 3
    else
      out[#out + 1] = 0
    end
  elseif any_paused and redis.call('SISMEMBER', KEYS[6], job) == 1 then
    redis.call('HSET', KEYS[2], job, slot)
    redis.call('HINCRBY', KEYS[7], job, 1)
    marks[job] = slot_n
    out[#out + 1] = 2
  elseif outbox_cap > 0 and redis.call('LLEN', KEYS[8]) >= outbox_cap then
    out[#out + 1] = 4
  else
    if any_open then
      local open = redis.call('HGET', KEYS[9], job)
      if open then
        local first, last, count, reason = string.match(open, '^(%d+) (%d+) (%d+) (%S+)')
        redis.call('XADD', KEYS[5], 'MAXLEN', '~', cap, '*', 'job', job, 'first', first,
          'last', last, 'count', count, 'reason', reason, 'token', token)
        redis.call('HDEL', KEYS[9], job)
      end
    end
    marks[job] = slot_n
    new_marks[#new_marks + 1] = job
    new_marks[#new_marks + 1] = slot
    new_last[#new_last + 1] = job
    new_last[#new_last + 1] = slot .. ' ' .. token
    if queue ~= '' then
      if pushes[queue] == nil then
        pushes[queue] = {}
        queues[#queues + 1] = queue
      end
      local list = pushes[queue]
      list[#list + 1] = message
    end
    if outbox_cap > 0 then
      redis.call('RPUSH', KEYS[8], job .. ' ' .. slot .. ' ' .. token)
    end
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', cap, '*', 'job', job, 'slot', slot, 'token', token)
    out[#out + 1] = 1
  end
end
flush('HSET', KEYS[2], new_marks)
flush('HSET', KEYS[3], new_last)
for _, queue in ipairs(queues) do
  flush('LPUSH', queue, pushes[queue])
end
return out
