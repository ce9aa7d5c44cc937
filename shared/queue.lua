#!lua name=musicq_${VERSION}
-- The queue's Redis function library: each state change of a room is exactly one call of
-- one of these functions, atomic in Redis. Loaded once per Redis (shared/functions.py);
-- persisted and replicated with the data, so a restart, a failover or a new replica has it.
--
-- Every key a function touches comes in through KEYS (none is built here), and only the
-- keys it touches, since each argument costs Redis time. Every write's KEYS start with
--   [1] queue    zset: the play order, member <seq><id>; score minus the votes, plus
--                (order "fair") the track's round times ROUND
--   [2] tracks   hash: id -> <seq> US title US artist US duration US added_at
--                [US owner US owner's name] (owner: the guest who added it)
--   [3] version  counter: bumped by every change of the room
--   [4] idem     string, ${IDEMPOTENCY_TTL} s: this write's first reply, for its retries
-- then the ones it alone needs (named at each function): seq (counter: add sequence
-- numbers); ballots (hash: <seq><voter> -> 1 or -1) and voted (zset, all scores 0,
-- <seq><voter>: one track's ballots are one range); byvoter (zset, scores 0, <voter> NUL
-- <seq><id>: a guest's ballots, for a ban); owned (zset, scores 0, <owner> NUL <seq><id>:
-- each owner's queued tracks; owner '' for those added without a guest token, kept only
-- while the order is "fair", the one thing that needs them); playing (hash:
-- the now-playing entry and its clock), history (list, newest first), played (hash: id ->
-- its newest history entry), plays (counter: play ids), skips (set: the current play's
-- skip voters), settings (hash), tokens (hash: SHA-256 of a token -> its role; see who()).
-- ARGV: [1] the idempotency fingerprint ('' for none), [2] the room's events channel,
-- [3] who asks (see who()), then the operation's own.
--
-- A success replies {'ok', kind, version, length, due, moved, <payload>, <edge>}, its fields
-- joined with RS when it comes from finish() (as it is published: one string costs Redis
-- less to reply than a dozen, and the client splits it). <payload> is
-- the id, score and record of the queued track an add, vote or remove was about; the now
-- playing entry and its clock for a play, pause, resume or skip; the settings for a
-- change of them; nothing for a clear. <due> is when the room's playback should move on
-- by itself ('' for never): the node enters it in the schedule (shared/playback.py).
-- <moved> is '1' when tracks other than the one the change was about changed places
-- (order "fair" re-ranks an owner's tracks; a ban; a change of order): a node that keeps
-- the head then reads the room again.
-- <edge> is the member, score and record of the track at the head's last place
-- (${EVENT_HEAD}). When the room has live listeners on its channel, the same fields,
-- joined with RS, are published: with the track the change was about, the edge is the
-- only one a single change can bring into the head, so a node keeps a room's head by
-- applying changes to it (shared/live.py) and nothing here grows with the head. Without
-- listeners neither the edge nor the length is looked up ('' in the reply: the caller
-- reads the length with the head, natively), which saves four calls of the five or so a
-- write costs. A refusal is a short reply: {'duplicate'}, {'full'}, {'not_found'},
-- {'empty'}, {'idempotency_mismatch'}, {'recent', <when it may come back>}, {'stale',
-- <entry>, <clock>}, {'not_playing'}, {'skipping_off'}, and who() may not ask:
-- {'no_token'}, {'wrong_token'}, {'unknown_token'} (a guest's path), {'no_guest_token'},
-- {'banned'}, {'guest_only'}, {'locked'}, {'guest_full'}, {'not_yours'}, {'host_only'}.

local US, RS = '\31', '\30'
local SEQ_WIDTH, ID_AT, EDGE = ${SEQ_WIDTH}, ${SEQ_WIDTH} + 1, ${EVENT_HEAD} - 1
local FALLBACK = 100  -- history entries a fallback looks through
local ROUND = 8589934592  -- 2^33: order "fair" puts round r at r * ROUND - votes
local GUEST = '\1'  -- a guest's ballots and skips are voter GUEST .. guest id

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
local function finish(keys, args, kind, payload, due, moved, length)  -- (length if known)
  local out = {'ok', kind, redis.call('INCR', keys[3]), '', due or '', moved and '1' or ''}
  for i = 1, #payload do out[6 + i] = payload[i] end
  local n = #out
  if redis.call('PUBSUB', 'SHARDNUMSUB', args[2])[2] == 0 then
    out[n + 1], out[n + 2], out[n + 3] = '', '', ''
    return remember(keys, args, table.concat(out, RS))
  end
  out[4] = length or redis.call('ZCARD', keys[1])
  local edge = redis.call('ZRANGE', keys[1], EDGE, EDGE, 'WITHSCORES')
  if edge[1] then
    out[n + 1], out[n + 2] = edge[1], edge[2]
    out[n + 3] = redis.call('HGET', keys[2], string.sub(edge[1], ID_AT))
  else
    out[n + 1], out[n + 2], out[n + 3] = '', '', ''
  end
  local event = table.concat(out, RS)
  redis.call('SPUBLISH', args[2], event)
  return remember(keys, args, event)
end

-- The n-th field of a record or entry.
local function field(text, n)  -- ('' past the last one)
  local start = 1
  for _ = 2, n do
    local at = string.find(text, US, start, true)
    if not at then return '' end
    start = at + 1
  end
  local stop = string.find(text, US, start, true)
  return string.sub(text, start, stop and stop - 1 or -1)
end

-- A queued track's record: its seq, its fields title .. added_at, and its owner and the
-- owner's name (both '' for a track added without a guest token).
local function parts(record)
  local at = ID_AT  -- the separator after seq; then past title, artist and duration
  for _ = 1, 3 do at = string.find(record, US, at + 1, true) end
  local rest = string.find(record, US, at + 1, true)  -- after added_at: the owner's part
  if not rest then return string.sub(record, ID_AT + 1), '', '' end
  local owner_end = string.find(record, US, rest + 1, true)
  return string.sub(record, ID_AT + 1, rest - 1), string.sub(record, rest + 1, owner_end - 1),
    string.sub(record, owner_end + 1)
end

-- Who asks: ARGV[3] is <admin><open><digest>: '1' if the request carried the server's
-- ADMIN_TOKEN, '1' if the server has none, then the SHA-256 (hex) of the bearer token ('' for
-- none). The room's tokens hash maps a digest to its role: 'host', 'cohost' US id,
-- 'guest' US id US name or 'banned' US id; its field '!room' marks a created room.
-- A token is looked up by its digest: nothing about a token can be learnt from how long that
-- takes (the digest of a 256-bit random secret). Returns {admin, open, token, role, id, name}.
local function who(tokens, actor)
  local a = {admin = string.sub(actor, 1, 1) == '1', open = string.sub(actor, 2, 2) == '1',
             token = string.len(actor) > 2}
  if a.token then
    local v = redis.call('HMGET', tokens, string.sub(actor, 3), '!room')
    a.created = v[2] ~= false
    if v[1] then
      local role = v[1]
      local cut = string.find(role, US, 1, true)
      a.role = cut and string.sub(role, 1, cut - 1) or role
      if cut then
        local rest = string.sub(role, cut + 1)
        local cut2 = string.find(rest, US, 1, true)
        a.id = cut2 and string.sub(rest, 1, cut2 - 1) or rest
        a.name = cut2 and string.sub(rest, cut2 + 1) or ''
      end
    end
  end
  return a
end

-- Whether a may act as the host: the server's ADMIN_TOKEN, or in a created room its host's
-- or a co-host's token, or in a room never created anybody when the server has no
-- ADMIN_TOKEN (the original rule). nil if so, else the refusal.
local function host_refusal(tokens, a)
  if a.admin or a.role == 'host' or a.role == 'cohost' then return nil end
  if a.role == 'banned' then return {'banned'} end
  local created = a.created
  if created == nil then created = redis.call('HEXISTS', tokens, '!room') == 1 end
  if not created and a.open then return nil end
  if not a.token then return {'no_token'} end
  return {'wrong_token'}
end

-- Whether a may act as a guest (add, vote, skip): a token must be one of the room's, and
-- not banned; with require_guest, a guest's or a host's.
local function guest_refusal(a, require_guest)
  if a.token and not a.admin and not a.role then return {'unknown_token'} end
  if a.role == 'banned' then return {'banned'} end
  if require_guest and a.role ~= 'guest' and not a.admin and a.role ~= 'host'
      and a.role ~= 'cohost' then
    return {'guest_only'}
  end
  return nil
end

-- The votes a queued track has, from its score (whatever the order).
local function votes_of(score)
  local s = tonumber(score)
  local r = math.floor(s / ROUND + 0.5)
  return r * ROUND - s
end

-- Order "fair": give each of owner's queued tracks its round (0 for its best, by votes,
-- then by when added; 1 for the next...): O(k log n) for its k tracks.
-- Returns whether a track other than ``subject`` changed its place.
local function rerank(queue, owned, owner, subject)
  local members = redis.call('ZRANGEBYLEX', owned, '[' .. owner .. '\0', '[' .. owner .. '\0\255')
  local ranked = {}
  local skip = string.len(owner) + 2
  for i, m in ipairs(members) do
    local member = string.sub(m, skip)
    local score = tonumber(redis.call('ZSCORE', queue, member))
    ranked[i] = {member, votes_of(score), score}
  end
  table.sort(ranked, function(x, y)
    if x[2] ~= y[2] then return x[2] > y[2] end
    return x[1] < y[1]
  end)
  local moved = false
  for round, r in ipairs(ranked) do
    local score = (round - 1) * ROUND - r[2]
    if score ~= r[3] then
      redis.call('ZADD', queue, score, r[1])
      if r[1] ~= subject then moved = true end
    end
  end
  return moved
end

-- A host's write, before it starts: its refusal (KEYS [13] tokens, ARGV [3] who asks), or
-- its first reply again (a retry with its idempotency key: only to one who may make it),
-- or nil to go on.
local function host_step(keys, args)
  return host_refusal(keys[13], who(keys[13], args[3])) or replay(keys, args)
end

-- owned holds each guest's queued tracks always, and those added without a guest token
-- (owner '') only while the order is fair, the one thing that needs them.
local function owns(owner, fair)
  return owner ~= '' or fair
end

local function drop_anonymous(owned)
  redis.call('ZREMRANGEBYLEX', owned, '[\0', '[\0\255')
end

-- A queued track's ballots go with it (played, removed or banned): its range in voted,
-- and a guest's ballot from byvoter.
local function drop_ballots(ballots, voted, byvoter, member)
  local seq = string.sub(member, 1, SEQ_WIDTH)
  local first, last = '[' .. seq, '[' .. seq .. '\255'
  local fields = redis.call('ZRANGEBYLEX', voted, first, last)
  if #fields > 0 then
    redis.call('HDEL', ballots, unpack(fields))
    redis.call('ZREMRANGEBYLEX', voted, first, last)
    for _, f in ipairs(fields) do
      if string.byte(f, ID_AT) == 1 then  -- a guest's
        redis.call('ZREM', byvoter, string.sub(f, ID_AT) .. '\0' .. member)
      end
    end
  end
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
  local v = redis.call('HMGET', key, 'autoplay', 'skip_threshold', 'fallback', 'require_guest',
                       'order')
  return {autoplay = v[1] == '1', skip_threshold = tonumber(v[2] or '0'),
          fallback = v[3] or 'none', require_guest = v[4] == '1', fair = v[5] == 'fair'}
end

-- Every setting as name=value pairs joined with US, as a reply carries them.
local function all_settings(key)
  local all = redis.call('HGETALL', key)
  local pairs_ = {}
  for i = 1, #all, 2 do pairs_[#pairs_ + 1] = all[i] .. '=' .. all[i + 1] end
  return table.concat(pairs_, US)
end

-- The playback keys, in every playback function's KEYS after the first four:
-- [5] ballots [6] voted [7] playing [8] history [9] played [10] plays [11] skips
-- [12] settings [13] tokens [14] owned [15] byvoter

-- The clock of the current play as one field ('' with nothing playing):
-- play_id US started US resumed US elapsed US paused US skips US threshold US autoplay US now,
-- and when the room is due to move on by itself ('' for never).
local function clock(playing, skips, s, now)
  local p = redis.call('HMGET', playing, 'play_id', 'started', 'resumed', 'elapsed', 'paused',
                       'entry')
  if not p[1] then return '', '', '' end
  local count = redis.call('SCARD', skips)
  local due = ''
  local duration = tonumber(field(p[6], 4)) * 1000
  if s.autoplay and p[5] == '0' and duration > 0 then
    due = string.format('%d', tonumber(p[3]) + duration - tonumber(p[4]))
  end
  return p[6], table.concat({p[1], p[2], p[3], p[4], p[5], count, s.skip_threshold,
                             s.autoplay and 1 or 0, now}, US), due
end

-- The one play step every advance is (play next, its compare-and-set form, autoplay, a
-- skip, a fallback): the next queued track, or with the fallback 'history' on an empty
-- queue the history track played longest ago, becomes now playing with a new play id
-- and a fresh clock, at the head of the history. nil when there is nothing to play.
-- A history entry: id US title US artist US duration US added_at US votes US played_at US
-- play_id US flags (s: skipped, f: a fallback replay) [US owner US owner's name].
local function advance(keys, limit, s, now)
  local popped = redis.call('ZPOPMIN', keys[1])
  local id, entry, flags, tail
  if #popped > 0 then
    local member = popped[1]
    id = string.sub(member, ID_AT)
    local record = redis.call('HGET', keys[2], id)
    redis.call('HDEL', keys[2], id)
    drop_ballots(keys[5], keys[6], keys[15], member)
    local fields, owner, name = parts(record)
    if owns(owner, s.fair) then redis.call('ZREM', keys[14], owner .. '\0' .. member) end
    if s.fair and rerank(keys[1], keys[14], owner) then s.moved = true end
    entry = id .. US .. fields .. US .. string.format('%d', votes_of(popped[2])) .. US .. now
    flags = ''
    tail = owner ~= '' and (US .. owner .. US .. name) or ''
  elseif s.fallback == 'history' then
    -- the track played longest ago: from the oldest entry on, the first one that is its
    -- track's newest (a track replayed since has a newer one), among the oldest FALLBACK;
    -- if every one of those was replayed since (a few tracks on a loop), the least recent
    -- of every track's newest entry (played: one per track the history holds)
    local history = redis.call('LRANGE', keys[8], -FALLBACK, -1)
    if #history == 0 then return nil end
    local oldest = nil
    for i = #history, 1, -1 do
      if redis.call('HGET', keys[9], field(history[i], 1)) == history[i] then
        oldest = history[i]
        break
      end
    end
    if not oldest then
      -- least recent by play id, not played_at: a fast loop plays several tracks within
      -- one millisecond, and HVALS's order would then pick among them at random
      local first = nil
      for _, newest in ipairs(redis.call('HVALS', keys[9])) do
        local play_id = tonumber(field(newest, 8)) or 0
        if not first or play_id < first then oldest, first = newest, play_id end
      end
      oldest = oldest or history[#history]
    end
    id = field(oldest, 1)
    entry = table.concat({id, field(oldest, 2), field(oldest, 3), field(oldest, 4),
                          field(oldest, 5), field(oldest, 6), now}, US)
    flags = 'f'
    local owner = field(oldest, 10)
    tail = owner ~= '' and (US .. owner .. US .. field(oldest, 11)) or ''
  else
    return nil
  end
  local play_id = redis.call('INCR', keys[10])
  entry = entry .. US .. play_id .. US .. flags .. tail
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

-- A history entry with a flag added (s: skipped), where it is the newest one.
local function mark(keys, entry, flag)
  local fields = {}
  local start = 1
  for i = 1, 11 do
    local stop = string.find(entry, US, start, true)
    fields[i] = string.sub(entry, start, stop and stop - 1 or -1)
    if not stop then break end
    start = stop + 1
  end
  fields[9] = (fields[9] or '') .. flag
  local marked = table.concat(fields, US)
  if redis.call('LINDEX', keys[8], 0) == entry then redis.call('LSET', keys[8], 0, marked) end
  redis.call('HSET', keys[9], fields[1], marked)
end

-- KEYS [5] seq [6] played [7] settings [8] playing [9] tokens [10] owned.
-- ARGV: [4] id [5] title [6] artist [7] duration [8] max queue length. A title of ''
-- (no track has one) asks only for a retry's first reply: {'not_found'} when there is none.
local function add(keys, args)
  local done = replay(keys, args)
  if done then return done end
  if args[5] == '' then return {'not_found'} end
  local a = who(keys[9], args[3])
  local id = args[4]
  local v = redis.call('HMGET', keys[7], 'autoplay', 'no_repeat_minutes', 'require_guest',
                       'locked', 'max_per_guest', 'order')
  local refused = guest_refusal(a, v[3] == '1')
  if refused then return refused end
  local hosting = a.admin or a.role == 'host' or a.role == 'cohost'
  if v[4] == '1' and not hosting then
    if host_refusal(keys[9], a) then return {'locked'} end
    hosting = true  -- (a room never created, on a server without ADMIN_TOKEN)
  end
  local length = redis.call('ZCARD', keys[1])
  if length >= tonumber(args[8]) then
    return remember(keys, args, {'full'})
  end
  local owner = a.role == 'guest' and a.id or ''
  if owner ~= '' and v[5] and v[5] ~= '0' and redis.call('ZLEXCOUNT', keys[10],
      '[' .. owner .. '\0', '[' .. owner .. '\0\255') >= tonumber(v[5]) then
    return remember(keys, args, {'guest_full', v[5]})
  end
  local now = now_ms()
  if v[2] and v[2] ~= '0' then
    local last = redis.call('HGET', keys[6], id)
    if last then
      local back = tonumber(field(last, 7)) + tonumber(v[2]) * 60000
      if back > tonumber(now) then
        return remember(keys, args, {'recent', string.format('%d', back)})
      end
    end
  end
  -- with autoplay on and nothing playing (or the last play over), the room is due now
  local due = nil
  if v[1] == '1' and not running(keys[8], now) then due = now end
  -- a duplicate burns a sequence number: they only need to grow
  local seq = string.format('%0' .. SEQ_WIDTH .. 'd', redis.call('INCR', keys[5]))
  local record = seq .. US .. args[5] .. US .. args[6] .. US .. args[7] .. US .. now
  if owner ~= '' then record = record .. US .. owner .. US .. a.name end
  if redis.call('HSETNX', keys[2], id, record) == 0 then
    return remember(keys, args, {'duplicate'})
  end
  local member = seq .. id
  redis.call('ZADD', keys[1], 0, member)
  if owns(owner, v[6] == 'fair') then redis.call('ZADD', keys[10], 0, owner .. '\0' .. member) end
  local score, moved = '0', false
  if v[6] == 'fair' then
    moved = rerank(keys[1], keys[10], owner, member)
    score = redis.call('ZSCORE', keys[1], member)
  end
  return finish(keys, args, 'add', {id, score, record}, due, moved, length + 1)
end

-- KEYS [5] ballots [6] voted [7] tokens [8] owned [9] byvoter [10] settings.
-- ARGV: [4] id. The host's, or a guest's own track.
local function remove(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local a = who(keys[7], args[3])
  local id = args[4]
  local record = redis.call('HGET', keys[2], id)
  local refused = host_refusal(keys[7], a)
  if refused and a.role == 'guest' then  -- a guest's own track
    local owner = record and select(2, parts(record))
    refused = record and owner ~= a.id and {'not_yours'} or nil
  end
  if refused then return refused end
  if not record then return remember(keys, args, {'not_found'}) end
  local seq = string.sub(record, 1, SEQ_WIDTH)
  local member = seq .. id
  local score = redis.call('ZSCORE', keys[1], member)
  redis.call('ZREM', keys[1], member)
  redis.call('HDEL', keys[2], id)
  drop_ballots(keys[5], keys[6], keys[9], member)
  local _, owner = parts(record)
  local fair = redis.call('HGET', keys[10], 'order') == 'fair'
  if owns(owner, fair) then redis.call('ZREM', keys[8], owner .. '\0' .. member) end
  local moved = fair and rerank(keys[1], keys[8], owner)
  return finish(keys, args, 'remove', {id, score, record}, nil, moved)
end

-- KEYS [5] ballots [6] voted [7] tokens [8] owned [9] byvoter [10] settings.
-- ARGV: [4] id [5] direction, 1 or -1 [6] voter ('' for an anonymous vote; a guest's is
-- always their own)
local function vote(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local a = who(keys[7], args[3])
  local v = redis.call('HMGET', keys[10], 'require_guest', 'order')
  local refused = guest_refusal(a, v[1] == '1')
  if refused then return refused end
  local id, direction, voter = args[4], tonumber(args[5]), args[6]
  if a.role == 'guest' then voter = GUEST .. a.id end
  local record = redis.call('HGET', keys[2], id)
  if not record then return remember(keys, args, {'not_found'}) end
  local member = string.sub(record, 1, SEQ_WIDTH) .. id
  local delta = direction
  if voter ~= '' then
    local ballot = string.sub(record, 1, SEQ_WIDTH) .. voter
    local prior = tonumber(redis.call('HGET', keys[5], ballot) or '0')
    if prior == direction then
      -- The voter's ballot already says this: nothing changes, so no new version.
      local version = tonumber(redis.call('GET', keys[3]) or '0')
      local out = {'ok', 'vote', version, '', '', '', id,
                   redis.call('ZSCORE', keys[1], member), record, '', '', ''}
      return remember(keys, args, out)
    end
    redis.call('HSET', keys[5], ballot, direction)
    if prior == 0 then
      redis.call('ZADD', keys[6], 0, ballot)
      if a.role == 'guest' then redis.call('ZADD', keys[9], 0, voter .. '\0' .. member) end
    end
    delta = direction - prior
  end
  local score = redis.call('ZINCRBY', keys[1], -delta, member)
  local moved = false
  if v[2] == 'fair' then
    local _, owner = parts(record)
    moved = rerank(keys[1], keys[8], owner, member)
    score = redis.call('ZSCORE', keys[1], member)
  end
  return finish(keys, args, 'vote', {id, score, record}, nil, moved)
end

-- ARGV: [4] the play id that must still be current ('' for any) [5] history limit. Host.
local function play_next(keys, args)
  local early = host_step(keys, args)
  if early then return early end
  local s, now = settings_of(keys[12]), now_ms()
  if args[4] ~= '' and (redis.call('HGET', keys[7], 'play_id') or '') ~= args[4] then
    local entry, times = clock(keys[7], keys[11], s, now)
    return remember(keys, args, {'stale', entry, times})
  end
  local entry = advance(keys, args[5], s, now)
  if not entry then return remember(keys, args, {'empty'}) end
  local _, times, due = clock(keys[7], keys[11], s, now)
  return finish(keys, args, 'play', {entry, times}, due, s.moved)
end

-- What the schedule calls when a room is due: moves on if autoplay is on and the current
-- play is over (or nothing plays and the queue has a track); else says when to look
-- again. ARGV: [3] history limit. Reply: a play's success, {'later', due} or {'idle'}.
local function advance_due(keys, args)
  local s, now = settings_of(keys[12]), now_ms()
  if not s.autoplay then return {'idle'} end
  local entry, _, due = clock(keys[7], keys[11], s, now)
  if entry ~= '' then
    if due == '' then return {'idle'} end  -- paused, or no duration: a host moves it on
    if tonumber(due) > tonumber(now) then return {'later', due} end
  end
  entry = advance(keys, args[3], s, now)
  if not entry then return {'idle'} end
  local _, times
  _, times, due = clock(keys[7], keys[11], s, now)
  return finish(keys, args, 'play', {entry, times}, due, s.moved)
end

-- ARGV: [4] voter ('' for a guest: their own) [5] history limit. Once per voter per play;
-- at the room's threshold the track is skipped: marked so in the history, and the next
-- one plays.
local function skip(keys, args)
  local done = replay(keys, args)
  if done then return done end
  local a = who(keys[13], args[3])
  local s, now = settings_of(keys[12]), now_ms()
  local refused = guest_refusal(a, s.require_guest)
  if refused then return refused end
  local voter = a.role == 'guest' and (GUEST .. a.id) or args[4]
  if voter == '' then return {'no_voter'} end
  if s.skip_threshold == 0 then return remember(keys, args, {'skipping_off'}) end
  local current = redis.call('HGET', keys[7], 'entry')
  if not current then return remember(keys, args, {'not_playing'}) end
  local _, entry, times, due
  entry, times, due = clock(keys[7], keys[11], s, now)
  local counted = redis.call('SADD', keys[11], voter) == 1  -- a voter's skip counts once
  if redis.call('SCARD', keys[11]) < s.skip_threshold then
    if not counted then
      local version = tonumber(redis.call('GET', keys[3]) or '0')
      return remember(keys, args, {'ok', 'skip', version, '', due, '', entry, times, '', '', ''})
    end
    _, times = clock(keys[7], keys[11], s, now)
    return finish(keys, args, 'skip', {entry, times}, due)
  end
  -- reached, by this vote or (the threshold lowered since) by a repeated one
  mark(keys, current, 's')
  entry = advance(keys, args[5], s, now)
  if not entry then  -- nothing left to play: the room falls silent
    redis.call('DEL', keys[7], keys[11])
    return finish(keys, args, 'play', {'', ''}, '')
  end
  _, times, due = clock(keys[7], keys[11], s, now)
  return finish(keys, args, 'play', {entry, times}, due, s.moved)
end

-- Host: stop the clock. Pausing a paused play changes nothing.
local function pause(keys, args)
  local early = host_step(keys, args)
  if early then return early end
  local s, now = settings_of(keys[12]), now_ms()
  local p = redis.call('HMGET', keys[7], 'resumed', 'elapsed', 'paused')
  if not p[1] then return remember(keys, args, {'not_playing'}) end
  if p[3] == '0' then
    redis.call('HSET', keys[7], 'paused', 1,
               'elapsed', tonumber(p[2]) + tonumber(now) - tonumber(p[1]))
    local entry, times = clock(keys[7], keys[11], s, now)
    return finish(keys, args, 'pause', {entry, times}, '')
  end
  local entry, times = clock(keys[7], keys[11], s, now)
  local version = tonumber(redis.call('GET', keys[3]) or '0')
  return remember(keys, args, {'ok', 'pause', version, '', '', '', entry, times, '', '', ''})
end

-- Host: restart the clock where it stopped. Resuming a running play changes nothing.
local function resume(keys, args)
  local early = host_step(keys, args)
  if early then return early end
  local s, now = settings_of(keys[12]), now_ms()
  local paused = redis.call('HGET', keys[7], 'paused')
  if not paused then return remember(keys, args, {'not_playing'}) end
  if paused == '1' then
    redis.call('HSET', keys[7], 'paused', 0, 'resumed', now)
    local entry, times, due = clock(keys[7], keys[11], s, now)
    return finish(keys, args, 'resume', {entry, times}, due)
  end
  local entry, times, due = clock(keys[7], keys[11], s, now)
  local version = tonumber(redis.call('GET', keys[3]) or '0')
  return remember(keys, args, {'ok', 'resume', version, '', due, '', entry, times, '', '', ''})
end

-- Order "votes" again: every queued track's score is minus its votes.
local function rescore_by_votes(queue)
  local all = redis.call('ZRANGE', queue, 0, -1, 'WITHSCORES')
  for i = 1, #all, 2 do redis.call('ZADD', queue, -votes_of(all[i + 1]), all[i]) end
end

-- Order "fair": every owner's tracks ranked into rounds, those added without a guest token
-- (owner '') entered in owned first (they are kept there only while the order is fair).
local function rescore_fair(queue, tracks, owned)
  drop_anonymous(owned)  -- (any left by an older release)
  local members = redis.call('ZRANGE', queue, 0, -1)
  for first = 1, #members, 1000 do
    local last = math.min(first + 999, #members)
    local ids, anonymous = {}, {}
    for i = first, last do ids[#ids + 1] = string.sub(members[i], ID_AT) end
    local records = redis.call('HMGET', tracks, unpack(ids))
    for i = first, last do
      local record = records[i - first + 1]
      if record and select(2, parts(record)) == '' then
        anonymous[#anonymous + 1] = 0
        anonymous[#anonymous + 1] = '\0' .. members[i]
      end
    end
    if #anonymous > 0 then redis.call('ZADD', owned, unpack(anonymous)) end
  end
  local all = redis.call('ZRANGE', owned, 0, -1)
  local seen = {}
  for _, m in ipairs(all) do
    local owner = string.sub(m, 1, string.find(m, '\0', 1, true) - 1)
    if not seen[owner] then
      seen[owner] = true
      rerank(queue, owned, owner)
    end
  end
end

-- Host: change settings. ARGV: [4...] name, value pairs (checked by the node). Replies
-- with every setting as name=value pairs joined with US. A change of order re-ranks the
-- whole queue in this one step.
local function configure(keys, args)
  local early = host_step(keys, args)
  if early then return early end
  local before = redis.call('HGET', keys[12], 'order') or 'votes'
  if #args > 3 then redis.call('HSET', keys[12], unpack(args, 4)) end
  local s, now = settings_of(keys[12]), now_ms()
  local after = s.fair and 'fair' or 'votes'
  if after ~= before then
    if s.fair then
      rescore_fair(keys[1], keys[2], keys[14])
    else
      rescore_by_votes(keys[1])
      drop_anonymous(keys[14])
    end
  end
  local _, _, due = clock(keys[7], keys[11], s, now)
  if s.autoplay and not running(keys[7], now) then due = now end
  return finish(keys, args, 'settings', {all_settings(keys[12])}, due, after ~= before)
end

-- Host: empty the queue, now playing and history.
local function clear(keys, args)
  local early = host_step(keys, args)
  if early then return early end
  redis.call('UNLINK', keys[1], keys[2], keys[5], keys[6], keys[7], keys[8], keys[9], keys[11],
             keys[14], keys[15])
  return finish(keys, args, 'clear', {})
end

-- Host: ban a guest. ARGV: [4] guest id. In this one step the guest's token stops working,
-- their queued tracks go (with every ballot on them), and so do their ballots on the
-- queued tracks of others and their skip vote; the event ends their streams.
local function ban(keys, args)
  local early = host_step(keys, args)
  if early then return early end
  local id = args[4]
  local known = redis.call('HGET', keys[13], '!guest:' .. id)
  if not known then return remember(keys, args, {'no_guest'}) end
  local digest = string.sub(known, 1, 64)
  redis.call('HSET', keys[13], digest, 'banned' .. US .. id, '!banned:' .. id, '1')
  local s = settings_of(keys[12])
  -- their tracks
  local prefix = '[' .. id .. '\0'
  for _, m in ipairs(redis.call('ZRANGEBYLEX', keys[14], prefix, prefix .. '\255')) do
    local member = string.sub(m, string.len(id) + 2)
    redis.call('ZREM', keys[1], member)
    redis.call('HDEL', keys[2], string.sub(member, ID_AT))
    drop_ballots(keys[5], keys[6], keys[15], member)
    redis.call('ZREM', keys[14], m)
  end
  -- their ballots on the tracks of others
  local voter = GUEST .. id
  local first = '[' .. voter .. '\0'
  local touched = {}
  for _, m in ipairs(redis.call('ZRANGEBYLEX', keys[15], first, first .. '\255')) do
    local member = string.sub(m, string.len(voter) + 2)
    local ballot = string.sub(member, 1, SEQ_WIDTH) .. voter
    local direction = redis.call('HGET', keys[5], ballot)
    if direction then
      redis.call('ZINCRBY', keys[1], tonumber(direction), member)
      redis.call('HDEL', keys[5], ballot)
      redis.call('ZREM', keys[6], ballot)
      if s.fair then
        local record = redis.call('HGET', keys[2], string.sub(member, ID_AT))
        if record then
          local _, owner = parts(record)
          touched[owner] = true
        end
      end
    end
  end
  redis.call('ZREMRANGEBYLEX', keys[15], first, first .. '\255')
  redis.call('SREM', keys[11], voter)
  for owner in pairs(touched) do rerank(keys[1], keys[14], owner) end
  return finish(keys, args, 'ban', {id}, nil, true)
end

-- Host: lift a ban. ARGV: [4] guest id.
local function unban(keys, args)
  local early = host_step(keys, args)
  if early then return early end
  local id = args[4]
  local known = redis.call('HGET', keys[13], '!guest:' .. id)
  if not known then return remember(keys, args, {'no_guest'}) end
  redis.call('HSET', keys[13], string.sub(known, 1, 64),
             'guest' .. US .. id .. US .. string.sub(known, 66))
  redis.call('HDEL', keys[13], '!banned:' .. id)
  return finish(keys, args, 'unban', {id})
end

-- Rooms, co-hosts and guests. KEYS [1] tokens [2] version.
-- ARGV: [1] the host token's digest. Creates the room unless it exists (created, or used).
local function create_room(keys, args)
  if redis.call('HEXISTS', keys[1], '!room') == 1 or redis.call('EXISTS', keys[2]) == 1 then
    return {'taken'}
  end
  redis.call('HSET', keys[1], '!room', now_ms(), args[1], 'host')
  return {'ok'}
end

-- KEYS [1] tokens. ARGV: [1] who asks [2] the co-host's id [3] its token's digest. The
-- host (not a co-host: one it made would outlive its revocation).
local function add_cohost(keys, args)
  local a = who(keys[1], args[1])
  local refused = host_refusal(keys[1], a)
  if refused then return refused end
  if a.role == 'cohost' and not a.admin then return {'host_only'} end
  if redis.call('HEXISTS', keys[1], '!room') == 0 then return {'not_created'} end
  redis.call('HSET', keys[1], args[3], 'cohost' .. US .. args[2], '!cohost:' .. args[2], args[3])
  return {'ok'}
end

-- KEYS [1] tokens. ARGV: [1] who asks [2] the co-host's id. The host (not a co-host, as
-- above). Takes effect at once:
-- every request looks its token up here.
local function revoke_cohost(keys, args)
  local a = who(keys[1], args[1])
  local refused = host_refusal(keys[1], a)
  if refused then return refused end
  if a.role == 'cohost' and not a.admin then return {'host_only'} end
  local digest = redis.call('HGET', keys[1], '!cohost:' .. args[2])
  if not digest then return {'no_cohost'} end
  redis.call('HDEL', keys[1], digest, '!cohost:' .. args[2])
  return {'ok'}
end

-- KEYS [1] tokens. ARGV: [1] the guest's id [2] its token's digest [3] its name.
local function join(keys, args)
  redis.call('HSET', keys[1], args[2], 'guest' .. US .. args[1] .. US .. args[3],
             '!guest:' .. args[1], args[2] .. US .. args[3])
  return {'ok'}
end

-- KEYS [1] tokens [2] owned [3] queue [4] tracks. ARGV: [1] who asks.
-- Reply: {guest id, name, member, rank, record, ...} for the guest's queued tracks, or a
-- refusal. Read-only.
local function mine(keys, args)
  local a = who(keys[1], args[1])
  if a.role == 'banned' then return {'banned'} end
  if a.admin or a.role == 'host' or a.role == 'cohost' then return {'not_guest'} end
  if a.role ~= 'guest' then return {a.token and 'unknown_token' or 'no_guest_token'} end
  local out = {'ok', a.id, a.name}
  local prefix = '[' .. a.id .. '\0'
  for _, m in ipairs(redis.call('ZRANGEBYLEX', keys[2], prefix, prefix .. '\255')) do
    local member = string.sub(m, string.len(a.id) + 2)
    local rank = redis.call('ZRANK', keys[3], member)
    local score = redis.call('ZSCORE', keys[3], member)
    if rank then
      out[#out + 1] = member
      out[#out + 1] = rank
      out[#out + 1] = score
      out[#out + 1] = redis.call('HGET', keys[4], string.sub(member, ID_AT))
    end
  end
  return out
end

-- KEYS [1] tokens. ARGV: [1] who asks. Reply: {role, id, name} ('' for none), or a refusal
-- for a token that is not the room's. Read-only.
local function whoami(keys, args)
  local a = who(keys[1], args[1])
  if a.token and not a.admin and not a.role then return {'unknown_token'} end
  return {'ok', a.role or (a.admin and 'admin' or ''), a.id or '', a.name or ''}
end

-- KEYS [1] playing [2] skips [3] settings. Reply: entry, clock, settings (as configure's),
-- and Redis's time: what a snapshot of the room shows.
local function now_playing(keys, args)
  local s, now = settings_of(keys[3]), now_ms()
  local entry, times = clock(keys[1], keys[2], s, now)
  return {entry, times, all_settings(keys[3]), now}
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

-- (The load context has no pairs/ipairs: plain loops over name, function lists.)
local writes = {'add', add, 'remove', remove, 'vote', vote, 'play_next', play_next,
                'advance_due', advance_due, 'skip', skip, 'pause', pause, 'resume', resume,
                'configure', configure, 'clear', clear, 'ban', ban, 'unban', unban,
                'create_room', create_room, 'add_cohost', add_cohost,
                'revoke_cohost', revoke_cohost, 'join', join, 'settle', settle}
for i = 1, #writes, 2 do
  redis.register_function(writes[i] .. '_${VERSION}', writes[i + 1])
end
local reads = {'now_playing', now_playing, 'due', due, 'metadata', metadata, 'mine', mine,
               'whoami', whoami}
for i = 1, #reads, 2 do
  redis.register_function{function_name = reads[i] .. '_${VERSION}', callback = reads[i + 1],
                          flags = {'no-writes'}}
end
