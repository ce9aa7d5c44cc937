#!lua name=musicq_${VERSION}
-- The queue's Redis function library: each state change of a room is exactly one call of
-- one of these functions, atomic in Redis. Loaded once per Redis (shared/functions.py);
-- persisted and replicated with the data, so a restart, a failover or a new replica has it.
--
-- Every key a function touches comes in through KEYS (none is built here), and only the
-- keys it touches, since each argument costs Redis time. Every write's KEYS start with
--   [1] queue    zset: score minus the votes, member <seq><id>: the play order
--   [2] tracks   hash: id -> <seq> US title US artist US duration US added_at
--   [3] version  counter: bumped by every change of the room
--   [4] idem     string, ${IDEMPOTENCY_TTL} s: this write's first reply, for its retries
-- then the ones it alone needs: seq (counter: add sequence numbers); ballots (hash:
-- <seq><voter> -> 1 or -1) and voted (zset, all scores 0, <seq><voter>: one track's
-- ballots are one range); now (the now-playing entry), history (list, newest first) and
-- played (hash: id -> its newest history entry). ARGV: [1] the idempotency fingerprint
-- ('' for none), [2] the room's events channel, then the operation's own.
--
-- A success replies {'ok', kind, version, length, due, <payload>, <edge>}. <payload> is
-- the id, score and record of the queued track an add, vote or remove was about; the now
-- playing entry and its clock for a play, pause, resume or skip; the settings for a
-- change of them; nothing for a clear. <due> is when the room's playback should move on
-- by itself ('' for never): the node enters it in the schedule (shared/playback.py).
-- <edge> is the member, score and record of the track at the head's last place
-- (${EVENT_HEAD}). When the room has live listeners on its channel, the same fields,
-- joined with RS, are published: with the track the change was about, the edge is the
-- only one a single change can bring into the head, so a node keeps a room's head by
-- applying changes to it (shared/live.py) and nothing here grows with the head. Without
-- listeners neither the edge nor the length is looked up ('' in the reply: the caller
-- reads the length with the head, natively), which saves four calls of the five or so a
-- write costs. A refusal is a short reply: {'duplicate'}, {'full'}, {'not_found'},
-- {'empty'}, {'idempotency_mismatch'}, {'recent', <when it may come back>}, {'stale',
-- <entry>, <clock>}, {'not_playing'}, {'skipping_off'}.

local US, RS = '\31', '\30'
local SEQ_WIDTH, ID_AT, EDGE = ${SEQ_WIDTH}, ${SEQ_WIDTH} + 1, ${EVENT_HEAD} - 1
local FALLBACK = 100  -- history entries a fallback looks through

local function now_ms()
  local t = redis.call('TIME')
  return string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000))
end

-- A write's first reply is kept under its idempotency key: a retry gets it back unchanged.
local function replay(keys, args)
  local fingerprint = args[1]
  if fingerprint == '' then return nil end
  local prior = redis.call('GET', keys[4])
  if not prior then return nil end
  if string.sub(prior, 1, #fingerprint + 1) ~= fingerprint .. '\n' then
    return {'idempotency_mismatch'}
  end
  return cjson.decode(string.sub(prior, #fingerprint + 2))
end

local function remember(keys, args, reply)
  if args[1] ~= '' then
    redis.call('SET', keys[4], args[1] .. '\n' .. cjson.encode(reply), 'EX', ${IDEMPOTENCY_TTL})
  end
  return reply
end

-- Every change ends here: a new version and, for the room's live listeners if it has any,
-- the length, the edge of the head and the event; then the reply.
local function finish(keys, args, kind, payload, due)
  local out = {'ok', kind, redis.call('INCR', keys[3]), '', due or ''}
  for i = 1, #payload do out[5 + i] = payload[i] end
  local n = #out
  if redis.call('PUBSUB', 'SHARDNUMSUB', args[2])[2] == 0 then
    out[n + 1], out[n + 2], out[n + 3] = '', '', ''
    return remember(keys, args, out)
  end
  out[4] = redis.call('ZCARD', keys[1])
  local edge = redis.call('ZRANGE', keys[1], EDGE, EDGE, 'WITHSCORES')
  if edge[1] then
    out[n + 1], out[n + 2] = edge[1], edge[2]
    out[n + 3] = redis.call('HGET', keys[2], string.sub(edge[1], ID_AT))
  else
    out[n + 1], out[n + 2], out[n + 3] = '', '', ''
  end
  redis.call('SPUBLISH', args[2], table.concat(out, RS))
  return remember(keys, args, out)
end

-- A queued track's ballots go with it (played or removed): its range in the index.
-- KEYS [5] ballots [6] voted
local function drop_ballots(keys, seq)
  local first, last = '[' .. seq, '[' .. seq .. '\255'
  local fields = redis.call('ZRANGEBYLEX', keys[6], first, last)
  if #fields > 0 then
    redis.call('HDEL', keys[5], unpack(fields))
    redis.call('ZREMRANGEBYLEX', keys[6], first, last)
  end
end

-- The n-th field of a record or entry.
local function field(text, n)
  local start = 1
  for _ = 2, n do start = string.find(text, US, start, true) + 1 end
  local stop = string.find(text, US, start, true)
  return string.sub(text, start, stop and stop - 1 or -1)
end

-- Whether a play is on and not over: nothing (no play, paused, or past its end) means a
-- room with autoplay may start its next track now.
local function running(playing, now)
  local p = redis.call('HMGET', playing, 'entry', 'resumed', 'elapsed', 'paused')
  if not p[1] then return false end
  if p[4] == '1' then return true end  -- paused: the host holds it
  local duration = tonumber(field(p[1], 4)) * 1000
  return duration == 0 or tonumber(p[2]) + duration - tonumber(p[3]) > tonumber(now)
end

-- The settings playback needs, with their defaults.
local function settings_of(key)
  local v = redis.call('HMGET', key, 'autoplay', 'skip_threshold', 'fallback')
  return {autoplay = v[1] == '1', skip_threshold = tonumber(v[2] or '0'),
          fallback = v[3] or 'none'}
end

-- The clock of the current play as one field ('' with nothing playing):
-- play_id US started US resumed US elapsed US paused US skips US threshold US autoplay US now,
-- and when the room is due to move on by itself ('' for never).
-- KEYS [7] playing [11] skips
local function clock(keys, s, now)
  local p = redis.call('HMGET', keys[7], 'play_id', 'started', 'resumed', 'elapsed', 'paused',
                       'entry')
  if not p[1] then return '', '', '' end
  local skips = redis.call('SCARD', keys[11])
  local due = ''
  local duration = tonumber(field(p[6], 4)) * 1000
  if s.autoplay and p[5] == '0' and duration > 0 then
    due = string.format('%d', tonumber(p[3]) + duration - tonumber(p[4]))
  end
  return p[6], table.concat({p[1], p[2], p[3], p[4], p[5], skips, s.skip_threshold,
                             s.autoplay and 1 or 0, now}, US), due
end

-- The one play step every advance is (play next, its compare-and-set form, autoplay, a
-- skip, a fallback): the next queued track, or with the fallback 'history' on an empty
-- queue the history track played longest ago, becomes now playing with a new play id
-- and a fresh clock, at the head of the history. nil when there is nothing to play.
-- KEYS [5] ballots [6] voted [7] playing [8] history [9] played [10] plays [11] skips.
local function advance(keys, limit, s, now)
  local popped = redis.call('ZPOPMIN', keys[1])
  local id, entry, flags
  if #popped > 0 then
    local seq = string.sub(popped[1], 1, SEQ_WIDTH)
    id = string.sub(popped[1], ID_AT)
    local record = redis.call('HGET', keys[2], id)
    redis.call('HDEL', keys[2], id)
    drop_ballots(keys, seq)
    -- id, then the record without its seq (title .. added_at), then votes and played_at
    entry = id .. string.sub(record, ID_AT) .. US .. string.format('%d', -popped[2])
      .. US .. now
    flags = ''
  elseif s.fallback == 'history' then
    -- the track played longest ago: from the oldest entry on, the first one that is its
    -- track's newest (a track replayed since has a newer one), among the oldest FALLBACK
    local tail = redis.call('LRANGE', keys[8], -FALLBACK, -1)
    if #tail == 0 then return nil end
    local oldest = tail[#tail]
    for i = #tail, 1, -1 do
      if redis.call('HGET', keys[9], field(tail[i], 1)) == tail[i] then
        oldest = tail[i]
        break
      end
    end
    id = field(oldest, 1)
    entry = table.concat({id, field(oldest, 2), field(oldest, 3), field(oldest, 4),
                          field(oldest, 5), field(oldest, 6), now}, US)
    flags = 'f'
  else
    return nil
  end
  local play_id = redis.call('INCR', keys[10])
  entry = entry .. US .. play_id .. US .. flags
  redis.call('HSET', keys[7], 'entry', entry, 'play_id', play_id, 'started', now,
             'resumed', now, 'elapsed', 0, 'paused', 0)
  redis.call('DEL', keys[11])
  redis.call('HSET', keys[9], id, entry)
  local kept = redis.call('LPUSH', keys[8], entry)
  for _ = 1, kept - tonumber(limit) do
    local old = redis.call('RPOP', keys[8])
    local old_id = string.sub(old, 1, string.find(old, US, 1, true) - 1)
    if redis.call('HGET', keys[9], old_id) == old then redis.call('HDEL', keys[9], old_id) end
  end
  return entry
end

-- KEYS [5] seq [6] played [7] settings [8] playing.
-- ARGV: [3] id [4] title [5] artist [6] duration [7] max queue length
local function add(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local id = args[3]
  if redis.call('ZCARD', keys[1]) >= tonumber(args[7]) then
    return remember(keys, args, {'full'})
  end
  local autoplay, no_repeat = unpack(redis.call('HMGET', keys[7], 'autoplay', 'no_repeat_minutes'))
  local now = now_ms()
  if no_repeat and no_repeat ~= '0' then
    local last = redis.call('HGET', keys[6], id)
    if last then
      local back = tonumber(field(last, 7)) + tonumber(no_repeat) * 60000
      if back > tonumber(now) then
        return remember(keys, args, {'recent', string.format('%d', back)})
      end
    end
  end
  -- with autoplay on and nothing playing (or the last play over), the room is due now
  local due = nil
  if autoplay == '1' and not running(keys[8], now) then due = now end
  -- a duplicate burns a sequence number: they only need to grow
  local seq = string.format('%0' .. SEQ_WIDTH .. 'd', redis.call('INCR', keys[5]))
  local record = seq .. US .. args[4] .. US .. args[5] .. US .. args[6] .. US .. now
  if redis.call('HSETNX', keys[2], id, record) == 0 then
    return remember(keys, args, {'duplicate'})
  end
  redis.call('ZADD', keys[1], 0, seq .. id)
  return finish(keys, args, 'add', {id, '0', record}, due)
end

-- KEYS [5] ballots [6] voted. ARGV: [3] id
local function remove(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local id = args[3]
  local record = redis.call('HGET', keys[2], id)
  if not record then return remember(keys, args, {'not_found'}) end
  local seq = string.sub(record, 1, SEQ_WIDTH)
  local score = redis.call('ZSCORE', keys[1], seq .. id)
  redis.call('ZREM', keys[1], seq .. id)
  redis.call('HDEL', keys[2], id)
  drop_ballots(keys, seq)
  return finish(keys, args, 'remove', {id, score, record})
end

-- KEYS [5] ballots [6] voted. ARGV: [3] id [4] direction, 1 or -1 [5] voter ('' for an
-- anonymous vote)
local function vote(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local id, direction, voter = args[3], tonumber(args[4]), args[5]
  local record = redis.call('HGET', keys[2], id)
  if not record then return remember(keys, args, {'not_found'}) end
  local member = string.sub(record, 1, SEQ_WIDTH) .. id
  local delta = direction
  if voter ~= '' then
    local ballot = string.sub(record, 1, SEQ_WIDTH) .. voter
    local prior = tonumber(redis.call('HGET', keys[5], ballot) or '0')
    if prior == direction then
      -- The voter's ballot already says this: nothing changes, so no new version.
      local v = tonumber(redis.call('GET', keys[3]) or '0')
      local out = {'ok', 'vote', v, '', '', id, redis.call('ZSCORE', keys[1], member), record,
                   '', '', ''}
      return remember(keys, args, out)
    end
    redis.call('HSET', keys[5], ballot, direction)
    if prior == 0 then redis.call('ZADD', keys[6], 0, ballot) end
    delta = direction - prior
  end
  local score = redis.call('ZINCRBY', keys[1], -delta, member)
  return finish(keys, args, 'vote', {id, score, record})
end

-- Playback takes KEYS [5] ballots [6] voted [7] playing [8] history [9] played [10] plays
-- [11] skips [12] settings.

-- ARGV: [3] the play id that must still be current ('' for any) [4] history limit
local function play_next(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local s, now = settings_of(keys[12]), now_ms()
  if args[3] ~= '' and (redis.call('HGET', keys[7], 'play_id') or '') ~= args[3] then
    local entry, times = clock(keys, s, now)
    return remember(keys, args, {'stale', entry, times})
  end
  local entry = advance(keys, args[4], s, now)
  if not entry then return remember(keys, args, {'empty'}) end
  local _, times, due = clock(keys, s, now)
  return finish(keys, args, 'play', {entry, times}, due)
end

-- What the schedule calls when a room is due: moves on if autoplay is on and the current
-- play is over (or nothing plays and the queue has a track); else says when to look
-- again. ARGV: [3] history limit. Reply: a play's success, {'later', due} or {'idle'}.
local function advance_due(keys, args)
  local s, now = settings_of(keys[12]), now_ms()
  if not s.autoplay then return {'idle'} end
  local entry, _, due = clock(keys, s, now)
  if entry ~= '' then
    if due == '' then return {'idle'} end  -- paused, or no duration: a host moves it on
    if tonumber(due) > tonumber(now) then return {'later', due} end
  end
  entry = advance(keys, args[3], s, now)
  if not entry then return {'idle'} end
  local _, times
  _, times, due = clock(keys, s, now)
  return finish(keys, args, 'play', {entry, times}, due)
end

-- ARGV: [3] voter [4] history limit. Once per voter per play; at the room's threshold the
-- track is skipped: marked so in the history, and the next one plays.
local function skip(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local s, now = settings_of(keys[12]), now_ms()
  if s.skip_threshold == 0 then return remember(keys, args, {'skipping_off'}) end
  local current = redis.call('HGET', keys[7], 'entry')
  if not current then return remember(keys, args, {'not_playing'}) end
  local _, entry, times, due
  entry, times, due = clock(keys, s, now)
  if redis.call('SADD', keys[11], args[3]) == 0 then  -- this voter's skip counts once
    local v = tonumber(redis.call('GET', keys[3]) or '0')
    return remember(keys, args, {'ok', 'skip', v, '', due, entry, times, '', '', ''})
  end
  if redis.call('SCARD', keys[11]) < s.skip_threshold then
    _, times = clock(keys, s, now)
    return finish(keys, args, 'skip', {entry, times}, due)
  end
  local skipped = current .. 's'
  if redis.call('LINDEX', keys[8], 0) == current then redis.call('LSET', keys[8], 0, skipped) end
  redis.call('HSET', keys[9], field(current, 1), skipped)
  entry = advance(keys, args[4], s, now)
  if not entry then  -- nothing left to play: the room falls silent
    redis.call('DEL', keys[7], keys[11])
    return finish(keys, args, 'play', {'', ''}, '')
  end
  _, times, due = clock(keys, s, now)
  return finish(keys, args, 'play', {entry, times}, due)
end

-- Host: stop the clock. Pausing a paused play changes nothing.
local function pause(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local s, now = settings_of(keys[12]), now_ms()
  local p = redis.call('HMGET', keys[7], 'resumed', 'elapsed', 'paused')
  if not p[1] then return remember(keys, args, {'not_playing'}) end
  if p[3] == '0' then
    redis.call('HSET', keys[7], 'paused', 1,
               'elapsed', tonumber(p[2]) + tonumber(now) - tonumber(p[1]))
    local entry, times = clock(keys, s, now)
    return finish(keys, args, 'pause', {entry, times}, '')
  end
  local entry, times = clock(keys, s, now)
  local v = tonumber(redis.call('GET', keys[3]) or '0')
  return remember(keys, args, {'ok', 'pause', v, '', '', entry, times, '', '', ''})
end

-- Host: restart the clock where it stopped. Resuming a running play changes nothing.
local function resume(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local s, now = settings_of(keys[12]), now_ms()
  local paused = redis.call('HGET', keys[7], 'paused')
  if not paused then return remember(keys, args, {'not_playing'}) end
  if paused == '1' then
    redis.call('HSET', keys[7], 'paused', 0, 'resumed', now)
    local entry, times, due = clock(keys, s, now)
    return finish(keys, args, 'resume', {entry, times}, due)
  end
  local entry, times, due = clock(keys, s, now)
  local v = tonumber(redis.call('GET', keys[3]) or '0')
  return remember(keys, args, {'ok', 'resume', v, '', due, entry, times, '', '', ''})
end

-- Host: change settings. ARGV: [3...] name, value pairs (checked by the node). Replies
-- with every setting as name=value pairs joined with US.
local function configure(keys, args)
  local done = replay(keys, args)
  if done then return done end
  if #args > 2 then redis.call('HSET', keys[12], unpack(args, 3)) end
  local s, now = settings_of(keys[12]), now_ms()
  local all = redis.call('HGETALL', keys[12])
  local pairs_ = {}
  for i = 1, #all, 2 do pairs_[#pairs_ + 1] = all[i] .. '=' .. all[i + 1] end
  local _, _, due = clock(keys, s, now)
  if s.autoplay and not running(keys[7], now) then due = now end
  return finish(keys, args, 'settings', {table.concat(pairs_, US)}, due)
end

local function clear(keys, args)
  local done = replay(keys, args)
  if done then return done end
  redis.call('UNLINK', keys[1], keys[2], keys[5], keys[6], keys[7], keys[8], keys[9], keys[11])
  return finish(keys, args, 'clear', {})
end

-- KEYS [1] playing [2] skips [3] settings. Reply: entry, clock, settings (as configure's),
-- and Redis's time: what a snapshot of the room shows.
local function now_playing(keys, args)
  local s, now = settings_of(keys[3]), now_ms()
  local ckeys = {}
  ckeys[7], ckeys[11] = keys[1], keys[2]
  local entry, times = clock(ckeys, s, now)
  local all = redis.call('HGETALL', keys[3])
  local pairs_ = {}
  for i = 1, #all, 2 do pairs_[#pairs_ + 1] = all[i] .. '=' .. all[i + 1] end
  return {entry, times, table.concat(pairs_, US), now}
end

-- KEYS [1] queue [2] tracks [3] played. ARGV: [1] id.
-- Reply: {'queued', score, record}, {'played', entry} or {'not_found'}.
local function metadata(keys, args)
  local id = args[1]
  local record = redis.call('HGET', keys[2], id)
  if record then
    return {'queued', redis.call('ZSCORE', keys[1], string.sub(record, 1, SEQ_WIDTH) .. id),
            record}
  end
  local entry = redis.call('HGET', keys[3], id)
  if entry then return {'played', entry} end
  return {'not_found'}
end

-- The schedule (KEYS [1]: a sorted set of rooms by when they are due, shared/playback.py).
-- ARGV [1] at most this many. Reply: room, due time, ... for the rooms due by Redis's time.
local function due(keys, args)
  return redis.call('ZRANGEBYSCORE', keys[1], '-inf', now_ms(), 'WITHSCORES', 'LIMIT', 0,
                    args[1])
end

-- ARGV [1] room [2] the due time it was found at [3] its next one ('' for none): set only if
-- nobody changed the room's entry meanwhile.
local function settle(keys, args)
  if redis.call('ZSCORE', keys[1], args[1]) ~= args[2] then return 0 end
  if args[3] == '' then return redis.call('ZREM', keys[1], args[1]) end
  return redis.call('ZADD', keys[1], args[3], args[1])
end

redis.register_function('add_${VERSION}', add)
redis.register_function('remove_${VERSION}', remove)
redis.register_function('vote_${VERSION}', vote)
redis.register_function('play_next_${VERSION}', play_next)
redis.register_function('advance_due_${VERSION}', advance_due)
redis.register_function('skip_${VERSION}', skip)
redis.register_function('pause_${VERSION}', pause)
redis.register_function('resume_${VERSION}', resume)
redis.register_function('configure_${VERSION}', configure)
redis.register_function('clear_${VERSION}', clear)
redis.register_function('settle_${VERSION}', settle)
redis.register_function{function_name = 'now_playing_${VERSION}', callback = now_playing,
                        flags = {'no-writes'}}
redis.register_function{function_name = 'due_${VERSION}', callback = due,
                        flags = {'no-writes'}}
redis.register_function{function_name = 'metadata_${VERSION}', callback = metadata,
                        flags = {'no-writes'}}
