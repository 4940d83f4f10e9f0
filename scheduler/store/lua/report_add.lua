-- Record one event a worker reports about a task the scheduler sent: one round trip per event.
-- KEYS[1] the job's reports stream (Keys.reports), KEYS[2] outcomes (hash),
-- KEYS[3] last_success (hash)
-- ARGV[1] job, ARGV[2] event (received|started|succeeded|failed|retried), ARGV[3] slot (the
-- header's ISO text), ARGV[4] task id, ARGV[5] kind, ARGV[6] worker, ARGV[7] duration_s
-- ('' = none), ARGV[8] error ('' = none), ARGV[9] history_max, ARGV[10] history_ttl in ms,
-- ARGV[11] '=' (exact) or '~' (approximate) MAXLEN, ARGV[12] detail ('' or absent = none):
-- what the run said of itself (a built-in task's exit code and output), in the stream only.
-- ARGV[13] step ('' or absent = none): the index of a chain's step or a group's member;
-- ARGV[14] fire ('' or absent = none): the task id of the fire a chain's later step belongs to.
--
-- The stream keeps at most history_max entries (a few more with '~') and none older than Redis
-- TIME minus history_ttl: retention runs on Redis's clock, whatever the worker's says.
-- The outcomes record is the job's newest event ({slot, task_id, outcome, detail, at}), except
-- that "received" never replaces a record of the same task id: a repeat or redelivery of a run
-- that already started must not make it look queued again. "succeeded" also sets last_success
-- to Redis TIME (epoch seconds with 3 decimals, as text).
-- A key that holds another type is left alone; the others are still written.
-- Returns the keys left alone because they hold the wrong type (empty: everything written).
local job, event, slot, task_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local t = redis.call('TIME')
local ms = math.floor(tonumber(t[2]) / 1000)
local now_ms = tonumber(t[1]) * 1000 + ms
local at = t[1] .. '.' .. string.format('%03d', ms)
local skipped = {}

local function usable(key, kind)
  local found = redis.call('TYPE', key)['ok']
  if found == 'none' or found == kind then
    return true
  end
  skipped[#skipped + 1] = key
  return false
end

if usable(KEYS[1], 'stream') then
  local fields = {'event', event, 'slot', slot, 'task_id', task_id, 'kind', ARGV[5],
    'worker', ARGV[6]}
  if ARGV[7] ~= '' then
    fields[#fields + 1] = 'duration_s'
    fields[#fields + 1] = ARGV[7]
  end
  if ARGV[8] ~= '' then
    fields[#fields + 1] = 'error'
    fields[#fields + 1] = ARGV[8]
  end
  if ARGV[12] and ARGV[12] ~= '' then
    fields[#fields + 1] = 'detail'
    fields[#fields + 1] = ARGV[12]
  end
  if ARGV[13] and ARGV[13] ~= '' then
    fields[#fields + 1] = 'step'
    fields[#fields + 1] = ARGV[13]
  end
  if ARGV[14] and ARGV[14] ~= '' then
    fields[#fields + 1] = 'fire'
    fields[#fields + 1] = ARGV[14]
  end
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[11], ARGV[9], '*', unpack(fields))
  local oldest = now_ms - tonumber(ARGV[10])
  if oldest > 0 then
    redis.call('XTRIM', KEYS[1], 'MINID', '=', oldest)
  end
end

if usable(KEYS[2], 'hash') then
  local replace = true
  if event == 'received' then
    local current = redis.call('HGET', KEYS[2], job)
    if current then
      local ok, record = pcall(cjson.decode, current)
      if ok and type(record) == 'table' and record['task_id'] == task_id then
        replace = false
      end
    end
  end
  if replace then
    local detail = cjson.null
    if ARGV[8] ~= '' then
      detail = ARGV[8]
    end
    redis.call('HSET', KEYS[2], job, cjson.encode({slot = slot, task_id = task_id,
      outcome = event, detail = detail, at = tonumber(at)}))
  end
end

if event == 'succeeded' and usable(KEYS[3], 'hash') then
  redis.call('HSET', KEYS[3], job, at)
end
return skipped
