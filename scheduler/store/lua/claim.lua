#!lua
-- Claim due slots under the fencing token, and (same-Redis broker) enqueue them in the same step.
-- KEYS[1] lease, KEYS[2] watermarks, KEYS[3] last_fire, KEYS[4] history, KEYS[5] missed,
-- KEYS[6] paused, KEYS[7] paused_skips, KEYS[8] outbox, KEYS[9] missed_open
-- ARGV[1] our lease value, ARGV[2] our token, ARGV[3] stream cap,
-- ARGV[4] outbox cap: 0 when the broker is this Redis (the message goes to its queue),
-- else claimed slots' messages are appended to the outbox, refused once it holds that many;
-- ARGV[5] how far (s) a slot may be ahead of Redis TIME: the allowed clock offset;
-- ARGV[6] number of missed ranges M, then M groups of 5: job, first, last, count, reason;
-- then the number of fires F, then F groups of 4: job, slot (epoch s),
-- queue key ('' = no LPUSH: the message goes to the outbox), message;
-- then the number of extra messages E (absent: none), then E groups of 3: the fire's index
-- among the F (1-based), queue key, message: a group's members after the first. A fire's
-- messages go together: every status applies to all of them (all pushed, or none). Kept
-- apart from the fires so that a burst of plain fires pays nothing for them.
-- Missed ranges come first: they are older than any fire of the same job in the batch.
--
-- All or nothing: Redis keeps a script's earlier writes when a later command fails, so every
-- key and value this call will write or read is checked first, and nothing is written when a
-- shared key is wrong. A wrong value that concerns one job only makes that job's items CORRUPT.
-- The "#!lua" line above makes Redis refuse the whole script up front when it is out of
-- memory, instead of failing at the first write.
--
-- Returns {0} when the lease is not ours;
-- {2, key, type} when a shared key holds the wrong type (nothing written);
-- else {1, statuses, corrupt, refused}: statuses has one per fire: 1 claimed now, 2 paused,
-- 3 already ours (this token claimed it: a resent claim), 0 taken earlier by another token,
-- 4 not claimed because the outbox is full, 5 corrupt (see corrupt), 6 later than Redis TIME
-- plus the allowed offset; corrupt lists job, key, what was found (3 per entry); refused is
-- the number of missed ranges refused as later than TIME plus the offset.
--@fenced
local unfit = fenced({'string', 'hash', 'hash', 'stream', 'stream', 'set', 'hash', 'list', 'hash'})
if unfit then
  return unfit
end
local token, cap = ARGV[2], ARGV[3]
local outbox_cap = tonumber(ARGV[4])
local latest = tonumber(redis.call('TIME')[1]) + tonumber(ARGV[5])

-- A whole number of seconds in [0, latest], or nil: what a watermark or a slot of ours can be.
-- (Checked by value, not by pattern: this runs once per fire of a burst.)
local function slot_value(text)
  local value = tonumber(text)
  if value == nil or value < 0 or value > latest or value ~= math.floor(value) then
    return nil
  end
  return value
end

-- Phase 1: read and check, write nothing. Watermarks as this call sees them.
local marks, bad = {}, {}
local corrupt = {}
local function flag(job, key, found)
  if not bad[job] then
    bad[job] = true
    corrupt[#corrupt + 1] = job
    corrupt[#corrupt + 1] = key
    corrupt[#corrupt + 1] = found
  end
end
local function watermark(job)
  local mark = marks[job]
  if mark == nil then
    local raw = redis.call('HGET', KEYS[2], job)
    if not raw then
      mark = -1
    else
      mark = slot_value(raw)
      if mark == nil then
        flag(job, KEYS[2], 'watermark ' .. string.sub(raw, 1, 40))
        mark = -1
      end
    end
    marks[job] = mark
  end
  return mark
end
local open_gaps = {}
local any_open = redis.call('HLEN', KEYS[9]) > 0
local function open_gap(job)
  if not any_open then
    return nil
  end
  local gap = open_gaps[job]
  if gap == nil then
    gap = false
    local raw = redis.call('HGET', KEYS[9], job)
    if raw then
      local first, last, count, reason = string.match(raw, '^(%d+) (%d+) (%d+) (%S+)$')
      if first and #first <= 15 and #last <= 15 and #count <= 15 then
        gap = {first, last, count, reason}
      else
        flag(job, KEYS[9], 'open gap ' .. string.sub(raw, 1, 40))
      end
    end
    open_gaps[job] = gap
  end
  return gap or nil
end
local queue_ok = {}
local function queue_usable(job, queue)
  if queue == '' then
    return true
  end
  if queue_ok[queue] == nil then
    local found = redis.call('TYPE', queue)['ok']
    queue_ok[queue] = (found == 'none' or found == 'list') or found
  end
  if queue_ok[queue] ~= true then
    flag(job, queue, 'a ' .. queue_ok[queue] .. ', not a queue list')
    return false
  end
  return true
end

local ranges, refused = {}, 0
local i = 7
for _ = 1, tonumber(ARGV[6]) do
  local job, first, last, count, reason = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  local last_n = slot_value(last)
  if last_n == nil then
    refused = refused + 1
  else
    watermark(job)
    if reason == 'outbox_full' then
      open_gap(job)
    end
    ranges[#ranges + 1] = {job, first, last, count, reason, last_n}
  end
end

local any_paused = redis.call('SCARD', KEYS[6]) > 0
-- Fires are read straight from ARGV in both phases (no table per fire: a burst has 1,000).
local first_fire, fires = i + 1, tonumber(ARGV[i])
local statuses, slot_ns = {}, {}
for f = 1, fires do
  local base = first_fire + (f - 1) * 4
  local job = ARGV[base]
  -- Slots come from the leader as integers: only their bound needs checking.
  local slot_n = tonumber(ARGV[base + 1])
  slot_ns[f] = slot_n
  if not slot_n or slot_n > latest then
    statuses[f] = 6
  else
    watermark(job)
    open_gap(job)
    queue_usable(job, ARGV[base + 2])
  end
end
-- Extra messages by fire index: {queue, message, queue, message, ...}; nil when there are none.
local extras = nil
local e = first_fire + fires * 4
for _ = 1, tonumber(ARGV[e] or '0') do
  local f, queue = tonumber(ARGV[e + 1]), ARGV[e + 2]
  extras = extras or {}
  local list = extras[f] or {}
  extras[f] = list
  list[#list + 1] = queue
  list[#list + 1] = ARGV[e + 3]
  if not statuses[f] then
    queue_usable(ARGV[first_fire + (f - 1) * 4], queue)
  end
  e = e + 3
end

-- Phase 2: decide and write. Every key and value touched below was checked above.
local function add_missed(job, first, last, count, reason)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', cap, '*', 'job', job, 'first', first,
    'last', last, 'count', count, 'reason', reason, 'token', token)
end
for _, range in ipairs(ranges) do
  local job, first, last, count, reason, last_n = unpack(range)
  if not bad[job] and marks[job] < last_n then
    redis.call('HSET', KEYS[2], job, last)
    marks[job] = last_n
    if reason == 'outbox_full' then
      -- A gap that goes on tick after tick stays one open range until the job fires again.
      local gap = open_gap(job)
      if gap then
        first, count = gap[1], tostring(tonumber(gap[3]) + tonumber(count))
      end
      redis.call('HSET', KEYS[9], job, first .. ' ' .. last .. ' ' .. count .. ' ' .. reason)
      open_gaps[job] = {first, last, count, reason}
      any_open = true
    else
      add_missed(job, first, last, count, reason)
    end
  end
end

-- Writes are gathered and sent as a few variadic commands (a burst claims 1,000 slots a call).
local function flush(command, key, values)
  for first = 1, #values, 1000 do
    redis.call(command, key, unpack(values, first, math.min(first + 999, #values)))
  end
end
local new_marks, new_last, pushes, queues, outbox = {}, {}, {}, {}, {}
local outbox_size = outbox_cap > 0 and redis.call('LLEN', KEYS[8]) or 0
-- A fire's message, and a group's other members: to its queue's push, or to the outbox.
local function enqueue(queue, message)
  if queue ~= '' then
    if pushes[queue] == nil then
      pushes[queue] = {}
      queues[#queues + 1] = queue
    end
    local list = pushes[queue]
    list[#list + 1] = message
  elseif outbox_cap > 0 then
    outbox[#outbox + 1] = message
    outbox_size = outbox_size + 1
  end
end
for f = 1, fires do
  local base = first_fire + (f - 1) * 4
  local job, slot, queue, message = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local slot_n = slot_ns[f]
  if statuses[f] then
    -- later than TIME plus the offset: already decided
  elseif bad[job] then
    statuses[f] = 5
  elseif marks[job] >= slot_n then
    if redis.call('HGET', KEYS[3], job) == slot .. ' ' .. token then
      statuses[f] = 3
    else
      statuses[f] = 0
    end
  elseif any_paused and redis.call('SISMEMBER', KEYS[6], job) == 1 then
    redis.call('HSET', KEYS[2], job, slot)
    local skips = tonumber(redis.call('HGET', KEYS[7], job) or '0') or 0
    redis.call('HSET', KEYS[7], job, string.format('%d', skips + 1))
    marks[job] = slot_n
    statuses[f] = 2
  elseif outbox_cap > 0 and outbox_size >= outbox_cap then
    statuses[f] = 4
  else
    local gap = open_gap(job)
    if gap then
      add_missed(job, gap[1], gap[2], gap[3], gap[4])
      redis.call('HDEL', KEYS[9], job)
      open_gaps[job] = false
    end
    marks[job] = slot_n
    new_marks[#new_marks + 1] = job
    new_marks[#new_marks + 1] = slot
    new_last[#new_last + 1] = job
    new_last[#new_last + 1] = slot .. ' ' .. token
    enqueue(queue, message)
    -- A group's other members, claimed with the first. The outbox admits a fire while it
    -- holds fewer than its cap, whatever the fire's size (a group never waits for room).
    local more = extras and extras[f]
    if more then
      for m = 1, #more, 2 do
        enqueue(more[m], more[m + 1])
      end
    end
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', cap, '*', 'job', job, 'slot', slot, 'token', token)
    statuses[f] = 1
  end
end
flush('HSET', KEYS[2], new_marks)
flush('HSET', KEYS[3], new_last)
flush('RPUSH', KEYS[8], outbox)
for _, queue in ipairs(queues) do
  flush('LPUSH', queue, pushes[queue])
end
return {1, statuses, corrupt, refused}
