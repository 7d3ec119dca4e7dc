package queue

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/wardhq/ward"
	"github.com/wardhq/ward/internal/seal"
	"github.com/wardhq/ward/internal/store"
)

// Live logs across servers. Servers sharing a store keep the live logs of
// the runs they leased in memory; a bus (store.Broadcaster) carries them
// to the others:
//
//   - A server with a follower of a run it did not lease watches the run:
//     it broadcasts a watch message now and every watchTick, naming how
//     much of the log it has. The server that leased the run answers with
//     what it keeps past that, and sends the run's new chunks on the bus
//     for watchHold after the last watch message.
//   - A server that takes a chunk for a run it did not lease sends it on.
//   - Every piece carries its offset in the run's log, so a piece that
//     comes twice or out of order takes its place (LiveLog.put), and a
//     piece lost on the way is sent again in answer to the next watch.
//
// Pieces are sealed with the project's key, bound to the task, the lease
// and the offset: the bus's transport (PostgreSQL's notification queue,
// which may spill to disk) never holds log text in the clear.
const (
	// watchTick is how often a watching server asks for the log it lacks
	// and checks that the run still runs.
	watchTick = time.Second
	// watchHold is how long a server sends a run's chunks on the bus after
	// the last watch message.
	watchHold = 5 * watchTick
)

// Sealer seals and opens the live log pieces a bus carries; a
// *seal.Keystore is one.
type Sealer interface {
	Seal(ctx context.Context, project string, now time.Time, ad seal.AD, plaintext []byte) ([]byte, error)
	Open(ctx context.Context, project string, ad seal.AD, envelope []byte) ([]byte, error)
}

// Kinds of bus message.
const (
	busPiece byte = 'l' // a piece of a run's live log
	busWatch byte = 'w' // a server follows a run: send its log from offset on
)

// pieceJump flags a piece whose offset is past what its receiver asked
// for: the text before it is gone, so a gap before it will not fill.
const pieceJump byte = 1

// busVersion is the first byte of every bus message.
const busVersion byte = 1

// busMessage is one message on the bus. Encoded:
//
//	[0]     busVersion
//	[1]     kind
//	[2]     flags
//	[3:11]  offset, uint64 big-endian
//	then sender, project, task and lease, each a 1-byte length and text;
//	then the rest: a piece's sealed text.
type busMessage struct {
	kind, flags                  byte
	offset                       int64 // a piece's offset; a watch's first offset wanted
	sender, project, task, lease string
	data                         []byte
}

// errBusMessage is returned for a message that does not decode.
var errBusMessage = errors.New("malformed bus message")

// headerLen is the encoded size of m without its data.
func (m *busMessage) headerLen() int {
	return 11 + 4 + len(m.sender) + len(m.project) + len(m.task) + len(m.lease)
}

// appendBus appends m's encoding to dst; ok is false when a text field
// is too long to encode.
func appendBus(dst []byte, m *busMessage) ([]byte, bool) {
	dst = append(dst, busVersion, m.kind, m.flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.offset))
	for _, f := range []string{m.sender, m.project, m.task, m.lease} {
		if len(f) > 255 {
			return nil, false
		}
		dst = append(append(dst, byte(len(f))), f...)
	}
	return append(dst, m.data...), true
}

// decodeBus decodes a bus message; data aliases b.
func decodeBus(b []byte) (busMessage, error) {
	var m busMessage
	if len(b) < 11 || b[0] != busVersion {
		return m, errBusMessage
	}
	m.kind, m.flags = b[1], b[2]
	if m.kind != busPiece && m.kind != busWatch {
		return m, errBusMessage
	}
	off := binary.BigEndian.Uint64(b[3:11])
	if off > 1<<62 {
		return m, errBusMessage
	}
	m.offset = int64(off)
	b = b[11:]
	for _, f := range []*string{&m.sender, &m.project, &m.task, &m.lease} {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return m, errBusMessage
		}
		*f, b = string(b[1:1+int(b[0])]), b[1+int(b[0]):]
		if *f == "" {
			return m, errBusMessage
		}
	}
	if m.kind == busWatch && len(b) > 0 {
		return m, errBusMessage
	}
	m.data = b
	return m, nil
}

// pieceAD binds a sealed piece to its run and its place in the log.
func pieceAD(project, task, lease string, offset int64) seal.AD {
	return seal.AD{Project: project, Record: task, Field: "live_log:" + lease + ":" + strconv.FormatInt(offset, 10)}
}

// newBusID names this server on the bus, so that it ignores its own
// messages.
func newBusID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// publishLog sends data, at offset off of the run's log, on the bus in
// sealed pieces; jump marks the first piece (see pieceJump).
func (s *Service) publishLog(ctx context.Context, project, task, lease string, off int64, data []byte, jump bool) error {
	m := busMessage{kind: busPiece, sender: s.busID, project: project, task: task, lease: lease}
	room := store.MaxBroadcast - m.headerLen() - seal.Overhead
	if room <= 0 {
		return ward.Errorf(ward.CodeInvalidArgument, "live log: names too long for the bus")
	}
	var msg []byte
	for len(data) > 0 {
		n := min(room, len(data))
		env, err := s.keys.Seal(ctx, project, s.now(), pieceAD(project, task, lease, off), data[:n])
		if err != nil {
			return err
		}
		m.offset, m.data, m.flags = off, env, 0
		if jump {
			m.flags = pieceJump
		}
		var ok bool
		if msg, ok = appendBus(msg[:0], &m); !ok {
			return ward.Errorf(ward.CodeInvalidArgument, "live log: names too long for the bus")
		}
		if err := s.bus.Broadcast(ctx, msg); err != nil {
			return err
		}
		off, data, jump = off+int64(n), data[n:], false
	}
	return nil
}

// onBus takes a message from the bus.
func (s *Service) onBus(ctx context.Context, msg []byte) {
	m, err := decodeBus(msg)
	if err != nil {
		s.log.Debug("live log: a bus message did not decode", "err", err)
		return
	}
	if m.sender == s.busID {
		return
	}
	now := s.now()
	switch m.kind {
	case busPiece:
		lg, _ := s.runs.live(m.task, m.lease, now)
		if lg == nil {
			lg = s.watches.log(m.task, m.lease)
		}
		if lg == nil {
			return // neither leased nor followed here
		}
		data, err := s.keys.Open(ctx, m.project, pieceAD(m.project, m.task, m.lease, m.offset), m.data)
		if err != nil {
			s.log.Warn("live log: a piece from the bus did not open", "task", m.task, "err", err)
			return
		}
		lg.put(m.offset, data, m.flags&pieceJump != 0, now)
	case busWatch:
		project, lg := s.runs.watched(m.task, m.lease, now.Add(watchHold))
		if lg == nil {
			return
		}
		if b, at := lg.since(m.offset); len(b) > 0 {
			if err := s.publishLog(ctx, project, m.task, m.lease, at, b, at > m.offset); err != nil && ctx.Err() == nil {
				s.log.Warn("live log: answer a watch", "task", m.task, "err", err)
			}
		}
	}
}

// watches are the runs leased elsewhere that followers on this server
// follow, by task and lease.
type watches struct {
	mu sync.Mutex
	m  map[watchKey]*watch
}

type watchKey struct{ task, lease string }

// watch is one followed run leased elsewhere.
type watch struct {
	key     watchKey
	project string
	log     *LiveLog
	refs    int // followers
	cancel  context.CancelFunc
}

// join adds a follower to the run's watch, starting the watch (run, in a
// goroutine of its own, until the last follower leaves) if there is none.
func (ws *watches) join(project, task, lease string, now time.Time, run func(context.Context, *watch)) *watch {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	k := watchKey{task, lease}
	if w := ws.m[k]; w != nil {
		w.refs++
		return w
	}
	if ws.m == nil {
		ws.m = map[watchKey]*watch{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watch{key: k, project: project, log: newLiveLog(now), refs: 1, cancel: cancel}
	ws.m[k] = w
	go run(ctx, w)
	return w
}

// leave removes a follower; the last one ends the watch.
func (ws *watches) leave(w *watch) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w.refs--; w.refs == 0 {
		delete(ws.m, w.key)
		w.cancel()
		w.log.close()
	}
}

// log returns the live log of a watched run, or nil.
func (ws *watches) log(task, lease string) *LiveLog {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w := ws.m[watchKey{task, lease}]; w != nil {
		return w.log
	}
	return nil
}

// watchRun keeps a watch going until ctx ends: it asks for the log it
// lacks every watchTick, gives up on a gap that an answer to a watch
// message did not fill, and closes the log once the run is over.
func (s *Service) watchRun(ctx context.Context, w *watch) {
	t := time.NewTicker(watchTick)
	defer t.Stop()
	gap := int64(-1) // skipStale's last answer
	for {
		m := busMessage{kind: busWatch, offset: w.log.End(), sender: s.busID, project: w.project, task: w.key.task, lease: w.key.lease}
		if msg, ok := appendBus(nil, &m); ok {
			if err := s.bus.Broadcast(ctx, msg); err != nil && ctx.Err() == nil {
				s.log.Warn("live log: watch", "task", w.key.task, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rec, err := s.st.GetTask(ctx, w.project, w.key.task)
		switch {
		case err == nil && (rec.Status != ward.StatusRunning || rec.LeaseID != w.key.lease),
			errors.Is(err, ward.ErrNotFound):
			w.log.close()
			return
		case err != nil && ctx.Err() == nil:
			s.log.Warn("live log: read the watched task", "task", w.key.task, "err", err)
		}
		gap = w.log.skipStale(gap)
	}
}
