from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Track(_message.Message):
    __slots__ = ("id", "title", "artist", "votes", "duration", "room", "added_at", "played_at", "play_id", "skipped", "fallback", "added_by_guest", "added_by_name")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ARTIST_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    ADDED_AT_FIELD_NUMBER: _ClassVar[int]
    PLAYED_AT_FIELD_NUMBER: _ClassVar[int]
    PLAY_ID_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    ADDED_BY_GUEST_FIELD_NUMBER: _ClassVar[int]
    ADDED_BY_NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    artist: str
    votes: int
    duration: int
    room: str
    added_at: int
    played_at: int
    play_id: int
    skipped: bool
    fallback: bool
    added_by_guest: str
    added_by_name: str
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., artist: _Optional[str] = ..., votes: _Optional[int] = ..., duration: _Optional[int] = ..., room: _Optional[str] = ..., added_at: _Optional[int] = ..., played_at: _Optional[int] = ..., play_id: _Optional[int] = ..., skipped: _Optional[bool] = ..., fallback: _Optional[bool] = ..., added_by_guest: _Optional[str] = ..., added_by_name: _Optional[str] = ...) -> None: ...

class TrackId(_message.Message):
    __slots__ = ("id", "room")
    ID_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    id: str
    room: str
    def __init__(self, id: _Optional[str] = ..., room: _Optional[str] = ...) -> None: ...

class VoteRequest(_message.Message):
    __slots__ = ("id", "up", "room", "voter")
    ID_FIELD_NUMBER: _ClassVar[int]
    UP_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    VOTER_FIELD_NUMBER: _ClassVar[int]
    id: str
    up: bool
    room: str
    voter: str
    def __init__(self, id: _Optional[str] = ..., up: _Optional[bool] = ..., room: _Optional[str] = ..., voter: _Optional[str] = ...) -> None: ...

class QueueList(_message.Message):
    __slots__ = ("queue", "version", "length")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    queue: _containers.RepeatedCompositeFieldContainer[Track]
    version: int
    length: int
    def __init__(self, queue: _Optional[_Iterable[_Union[Track, _Mapping]]] = ..., version: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class QueueResponse(_message.Message):
    __slots__ = ("message", "queue", "track", "version", "length")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    message: str
    queue: _containers.RepeatedCompositeFieldContainer[Track]
    track: Track
    version: int
    length: int
    def __init__(self, message: _Optional[str] = ..., queue: _Optional[_Iterable[_Union[Track, _Mapping]]] = ..., track: _Optional[_Union[Track, _Mapping]] = ..., version: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ("room", "limit", "offset", "expected_play_id")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_PLAY_ID_FIELD_NUMBER: _ClassVar[int]
    room: str
    limit: int
    offset: int
    expected_play_id: int
    def __init__(self, room: _Optional[str] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ..., expected_play_id: _Optional[int] = ...) -> None: ...

class NowPlayingReply(_message.Message):
    __slots__ = ("track", "play_id", "started_at", "ends_at", "paused", "position", "skip_votes", "skip_threshold", "server_time")
    TRACK_FIELD_NUMBER: _ClassVar[int]
    PLAY_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    SKIP_VOTES_FIELD_NUMBER: _ClassVar[int]
    SKIP_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_FIELD_NUMBER: _ClassVar[int]
    track: Track
    play_id: int
    started_at: int
    ends_at: int
    paused: bool
    position: float
    skip_votes: int
    skip_threshold: int
    server_time: int
    def __init__(self, track: _Optional[_Union[Track, _Mapping]] = ..., play_id: _Optional[int] = ..., started_at: _Optional[int] = ..., ends_at: _Optional[int] = ..., paused: _Optional[bool] = ..., position: _Optional[float] = ..., skip_votes: _Optional[int] = ..., skip_threshold: _Optional[int] = ..., server_time: _Optional[int] = ...) -> None: ...

class SkipRequest(_message.Message):
    __slots__ = ("room", "voter")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    VOTER_FIELD_NUMBER: _ClassVar[int]
    room: str
    voter: str
    def __init__(self, room: _Optional[str] = ..., voter: _Optional[str] = ...) -> None: ...

class SkipReply(_message.Message):
    __slots__ = ("skipped", "now_playing")
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    NOW_PLAYING_FIELD_NUMBER: _ClassVar[int]
    skipped: bool
    now_playing: NowPlayingReply
    def __init__(self, skipped: _Optional[bool] = ..., now_playing: _Optional[_Union[NowPlayingReply, _Mapping]] = ...) -> None: ...

class Settings(_message.Message):
    __slots__ = ("autoplay", "skip_threshold", "fallback", "no_repeat_minutes", "require_guest", "max_per_guest", "locked", "order")
    AUTOPLAY_FIELD_NUMBER: _ClassVar[int]
    SKIP_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    NO_REPEAT_MINUTES_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_GUEST_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_GUEST_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    autoplay: bool
    skip_threshold: int
    fallback: str
    no_repeat_minutes: int
    require_guest: bool
    max_per_guest: int
    locked: bool
    order: str
    def __init__(self, autoplay: _Optional[bool] = ..., skip_threshold: _Optional[int] = ..., fallback: _Optional[str] = ..., no_repeat_minutes: _Optional[int] = ..., require_guest: _Optional[bool] = ..., max_per_guest: _Optional[int] = ..., locked: _Optional[bool] = ..., order: _Optional[str] = ...) -> None: ...

class CreateRoomRequest(_message.Message):
    __slots__ = ("room",)
    ROOM_FIELD_NUMBER: _ClassVar[int]
    room: str
    def __init__(self, room: _Optional[str] = ...) -> None: ...

class CreateRoomReply(_message.Message):
    __slots__ = ("room", "host_token")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    HOST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    room: str
    host_token: str
    def __init__(self, room: _Optional[str] = ..., host_token: _Optional[str] = ...) -> None: ...

class CohostRequest(_message.Message):
    __slots__ = ("room", "cohost")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    COHOST_FIELD_NUMBER: _ClassVar[int]
    room: str
    cohost: str
    def __init__(self, room: _Optional[str] = ..., cohost: _Optional[str] = ...) -> None: ...

class CohostReply(_message.Message):
    __slots__ = ("cohost", "token")
    COHOST_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    cohost: str
    token: str
    def __init__(self, cohost: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class JoinRequest(_message.Message):
    __slots__ = ("room", "name")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    room: str
    name: str
    def __init__(self, room: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class JoinReply(_message.Message):
    __slots__ = ("guest", "guest_token", "name")
    GUEST_FIELD_NUMBER: _ClassVar[int]
    GUEST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    guest: str
    guest_token: str
    name: str
    def __init__(self, guest: _Optional[str] = ..., guest_token: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class GuestRequest(_message.Message):
    __slots__ = ("room", "guest")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    GUEST_FIELD_NUMBER: _ClassVar[int]
    room: str
    guest: str
    def __init__(self, room: _Optional[str] = ..., guest: _Optional[str] = ...) -> None: ...

class MyTrack(_message.Message):
    __slots__ = ("track", "position")
    TRACK_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    track: Track
    position: int
    def __init__(self, track: _Optional[_Union[Track, _Mapping]] = ..., position: _Optional[int] = ...) -> None: ...

class MineReply(_message.Message):
    __slots__ = ("guest", "name", "tracks")
    GUEST_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TRACKS_FIELD_NUMBER: _ClassVar[int]
    guest: str
    name: str
    tracks: _containers.RepeatedCompositeFieldContainer[MyTrack]
    def __init__(self, guest: _Optional[str] = ..., name: _Optional[str] = ..., tracks: _Optional[_Iterable[_Union[MyTrack, _Mapping]]] = ...) -> None: ...

class SettingsRequest(_message.Message):
    __slots__ = ("room", "settings")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    room: str
    settings: Settings
    def __init__(self, room: _Optional[str] = ..., settings: _Optional[_Union[Settings, _Mapping]] = ...) -> None: ...

class QueueEvent(_message.Message):
    __slots__ = ("type", "version", "track", "queue", "length", "now_playing", "playing", "settings")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    NOW_PLAYING_FIELD_NUMBER: _ClassVar[int]
    PLAYING_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    type: str
    version: int
    track: Track
    queue: _containers.RepeatedCompositeFieldContainer[Track]
    length: int
    now_playing: Track
    playing: NowPlayingReply
    settings: Settings
    def __init__(self, type: _Optional[str] = ..., version: _Optional[int] = ..., track: _Optional[_Union[Track, _Mapping]] = ..., queue: _Optional[_Iterable[_Union[Track, _Mapping]]] = ..., length: _Optional[int] = ..., now_playing: _Optional[_Union[Track, _Mapping]] = ..., playing: _Optional[_Union[NowPlayingReply, _Mapping]] = ..., settings: _Optional[_Union[Settings, _Mapping]] = ...) -> None: ...

class CatalogueQuery(_message.Message):
    __slots__ = ("query", "limit")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    query: str
    limit: int
    def __init__(self, query: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class CatalogueTrack(_message.Message):
    __slots__ = ("id", "title", "artist", "album", "duration", "plays", "extra")
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ARTIST_FIELD_NUMBER: _ClassVar[int]
    ALBUM_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    PLAYS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    artist: str
    album: str
    duration: int
    plays: int
    extra: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., artist: _Optional[str] = ..., album: _Optional[str] = ..., duration: _Optional[int] = ..., plays: _Optional[int] = ..., extra: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CatalogueResult(_message.Message):
    __slots__ = ("tracks",)
    TRACKS_FIELD_NUMBER: _ClassVar[int]
    tracks: _containers.RepeatedCompositeFieldContainer[CatalogueTrack]
    def __init__(self, tracks: _Optional[_Iterable[_Union[CatalogueTrack, _Mapping]]] = ...) -> None: ...
