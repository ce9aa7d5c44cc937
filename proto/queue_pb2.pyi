from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Track(_message.Message):
    __slots__ = ("id", "title", "artist", "votes", "duration", "room", "added_at", "played_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ARTIST_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    ROOM_FIELD_NUMBER: _ClassVar[int]
    ADDED_AT_FIELD_NUMBER: _ClassVar[int]
    PLAYED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    artist: str
    votes: int
    duration: int
    room: str
    added_at: int
    played_at: int
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., artist: _Optional[str] = ..., votes: _Optional[int] = ..., duration: _Optional[int] = ..., room: _Optional[str] = ..., added_at: _Optional[int] = ..., played_at: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("room", "limit", "offset")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    room: str
    limit: int
    offset: int
    def __init__(self, room: _Optional[str] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class NowPlayingReply(_message.Message):
    __slots__ = ("track",)
    TRACK_FIELD_NUMBER: _ClassVar[int]
    track: Track
    def __init__(self, track: _Optional[_Union[Track, _Mapping]] = ...) -> None: ...

class QueueEvent(_message.Message):
    __slots__ = ("type", "version", "track", "queue", "length", "now_playing")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TRACK_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    NOW_PLAYING_FIELD_NUMBER: _ClassVar[int]
    type: str
    version: int
    track: Track
    queue: _containers.RepeatedCompositeFieldContainer[Track]
    length: int
    now_playing: Track
    def __init__(self, type: _Optional[str] = ..., version: _Optional[int] = ..., track: _Optional[_Union[Track, _Mapping]] = ..., queue: _Optional[_Iterable[_Union[Track, _Mapping]]] = ..., length: _Optional[int] = ..., now_playing: _Optional[_Union[Track, _Mapping]] = ...) -> None: ...
