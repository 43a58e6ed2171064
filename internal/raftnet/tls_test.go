package raftnet

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"hash/crc32"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4/config"
	pb "github.com/lni/dragonboat/v4/raftpb"

	"github.com/zongzi-kv/zongzi/internal/testcert"
)

// tlsSender is a transport that only dials, with TLS config cfg, and
// whose hello says it listens on 127.0.0.1:4242.
func tlsSender(cfg *tls.Config) *Transport {
	return Factory{TLS: cfg}.Create(config.NodeHostConfig{RaftAddress: "127.0.0.1:4242"}, nil, nil).(*Transport)
}

// helloAndBatch is what a sender writes first: a hello that says it
// listens on 127.0.0.1:4242, and a batch.
func helloAndBatch(t *testing.T) []byte {
	t.Helper()
	addr := []byte("127.0.0.1:4242")
	b := testBatch(1, nil)
	p, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return append(rawFrame(frameHello, addr, crc32.Checksum(addr, crcTable)), rawFrame(frameBatch, p, crc32.Checksum(p, crcTable))...)
}

// TestTLSCarriesBatchesAndSnapshots: between two hosts of one CA,
// batches (one larger than a TLS record and than the read buffer), the
// hello, and a snapshot's chunks and end go through TLS as they do over
// plain TCP.
func TestTLSCarriesBatchesAndSnapshots(t *testing.T) {
	ca := testcert.NewCA(t, "cluster")
	r := startReceiverWith(t, ca.Config(t), idleTimeout)
	sender := tlsSender(ca.Config(t))
	conn, err := sender.GetConnection(context.Background(), r.address())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*Connection).c.(*tls.Conn); !ok || tc.ConnectionState().NegotiatedProtocol != alpnProtocol {
		t.Fatalf("the sender's connection is a %T, want TLS with the protocol %q", conn.(*Connection).c, alpnProtocol)
	}
	cmds := [][]byte{{1}, bytes.Repeat([]byte("x"), 3<<20), {3}}
	for i, cmd := range cmds {
		b := testBatch(i, cmd)
		b.SourceAddress = "host-a"
		if err := conn.SendMessageBatch(b); err != nil {
			t.Fatal(err)
		}
	}
	r.await(t, len(cmds))
	sc, err := sender.GetSnapshotConnection(context.Background(), r.address())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := sc.SendChunk(pb.Chunk{ShardID: 9, ReplicaID: 2, ChunkId: uint64(i), ChunkCount: 2, Filepath: "f", FileSize: 1, HasFileInfo: true, Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	sc.Close() // returns once the receiver answered the end

	r.mu.Lock()
	defer r.mu.Unlock()
	for i, b := range r.batches {
		if got := b.Requests[0].Entries[0].Cmd; !bytes.Equal(got, cmds[i]) {
			t.Fatalf("batch %d carries %d bytes, want %d", i, len(got), len(cmds[i]))
		}
	}
	if want := []string{"host-a 127.0.0.1:4242"}; !slices.Equal(r.learnt, want) {
		t.Fatalf("learnt %q, want %q", r.learnt, want)
	}
	if len(r.chunks) != 2 {
		t.Fatalf("%d chunks handed over when the snapshot connection closed, want 2", len(r.chunks))
	}
}

// TestTLSRefusesStrangers: a receiver with TLS closes the connections of
// senders it cannot verify, or that do not speak TLS or raftnet, before it
// reads a frame of theirs; a sender does not talk to a receiver it cannot
// verify. Only the batch of a host of the cluster is handed over.
func TestTLSRefusesStrangers(t *testing.T) {
	ca, other := testcert.NewCA(t, "cluster"), testcert.NewCA(t, "other")
	r := startReceiverWith(t, ca.Config(t), idleTimeout)

	// With TLS 1.3 a client's handshake may end before the server has
	// verified its certificate: the server's refusal comes after.
	foreign := other.StrangerConfig(t, ca)
	noCert := ca.Config(t)
	noCert.Certificates = nil
	h2 := ca.Config(t)
	h2.NextProtos = []string{"h2"} // the message bus's protocol
	for name, cfg := range map[string]*tls.Config{
		"a certificate of another CA": foreign, "no certificate": noCert, "another protocol": h2,
	} {
		t.Run(name, func(t *testing.T) {
			c, err := tls.Dial("tcp", r.address(), cfg)
			if err != nil {
				t.Logf("refused in the handshake: %v", err)
				return
			}
			defer c.Close()
			_, _ = c.Write(helloAndBatch(t)) // fails once the refusal came
			if !closedWithin(t, c, 5*time.Second) {
				t.Fatal("the connection is open 5 s after the handshake")
			}
		})
	}
	t.Run("plain TCP", func(t *testing.T) {
		c := dialTCP(t, r.address())
		if _, err := c.Write(helloAndBatch(t)); err != nil {
			t.Fatal(err)
		}
		if !closedWithin(t, c, 5*time.Second) {
			t.Fatal("the connection is open 5 s after a plain hello and batch")
		}
	})
	t.Run("a receiver of another CA", func(t *testing.T) {
		trusting := ca.Config(t)
		trusting.RootCAs = other.Pool
		_, err := tlsSender(trusting).GetConnection(context.Background(), r.address())
		if !errors.As(err, new(x509.UnknownAuthorityError)) {
			t.Fatalf("connecting to a receiver signed by an unknown CA: %v, want x509.UnknownAuthorityError", err)
		}
	})

	conn, err := tlsSender(ca.Config(t)).GetConnection(context.Background(), r.address())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SendMessageBatch(testBatch(1, []byte("member"))); err != nil {
		t.Fatal(err)
	}
	r.await(t, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.batches) != 1 || string(r.batches[0].Requests[0].Entries[0].Cmd) != "member" {
		t.Fatalf("%d batches handed over, want only the member's", len(r.batches))
	}
}

// TestTLSServerName: without ServerName, a sender checks the receiver's
// certificate against the address it dials (an IP SAN); with it, against
// that name, which the receiver's certificate must carry.
func TestTLSServerName(t *testing.T) {
	ca := testcert.NewCA(t, "cluster")
	r := startReceiverWith(t, ca.Config(t, "raft.zongzi.test"), idleTimeout)
	for name, want := range map[string]bool{"": true, "raft.zongzi.test": true, "other.zongzi.test": false} {
		cfg := ca.Config(t)
		cfg.ServerName = name
		conn, err := tlsSender(cfg).GetConnection(context.Background(), r.address())
		if err == nil {
			conn.Close()
		}
		if (err == nil) != want {
			t.Errorf("ServerName %q: %v; want a connection: %v", name, err, want)
		}
		if !want && !errors.As(err, new(x509.HostnameError)) {
			t.Errorf("ServerName %q: %v, want x509.HostnameError", name, err)
		}
	}
}

// TestTLSSilentConnectionsAreClosed: with TLS, a connection that stalls
// before or in its handshake is closed once the handshake's time passed
// (here the idle timeout, shorter), and one silent after its handshake, or
// after its hello, once idle passed; one that keeps sending batches stays
// open past it.
func TestTLSSilentConnectionsAreClosed(t *testing.T) {
	const idle = time.Second
	ca := testcert.NewCA(t, "cluster")
	r := startReceiverWith(t, ca.Config(t), idle)
	plain := func() net.Conn { return dialTCP(t, r.address()) }
	handshaken := func() net.Conn {
		c, err := tls.Dial("tcp", r.address(), ca.Config(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	nothing, stalled := plain(), plain()
	// A TLS handshake record's header, whose 512 bytes never come.
	if _, err := stalled.Write([]byte{22, 3, 1, 2, 0}); err != nil {
		t.Fatal(err)
	}
	silent, hello := handshaken(), handshaken()
	addr := []byte("127.0.0.1:4242")
	if _, err := hello.Write(rawFrame(frameHello, addr, crc32.Checksum(addr, crcTable))); err != nil {
		t.Fatal(err)
	}
	busy, err := tlsSender(ca.Config(t)).GetConnection(context.Background(), r.address())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for i := range 10 { // a batch every idle/5, for twice idle
		if err := busy.SendMessageBatch(testBatch(i, nil)); err != nil {
			t.Fatalf("batch %d on a busy connection: %v", i, err)
		}
		r.await(t, 1)
		time.Sleep(idle / 5)
	}
	for name, c := range map[string]net.Conn{
		"sent nothing": nothing, "stalled in its handshake": stalled,
		"sent nothing after its handshake": silent, "sent a hello": hello,
	} {
		if !closedWithin(t, c, 5*time.Second) {
			t.Errorf("a connection that %s is open 5 s later, idle %v", name, idle)
		}
	}
}
