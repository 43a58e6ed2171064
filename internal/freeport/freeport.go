// Package freeport finds free loopback ports for test clusters, outside
// the kernel's ephemeral range: a port taken from that range (by listening
// on port 0) can be handed to some process's outgoing connection between
// the moment it is found and the moment the test server binds it.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the lowest port handed out.
const lowest = 10000

// given holds every port handed out by this process: a port is free again
// once Addrs returns, until the test server binds it, so it must not be
// handed out twice (say to two nodes prepared one after the other).
var given = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Addrs returns n distinct 127.0.0.1 addresses whose ports are free for
// TCP and UDP (gossip uses both) and below the ephemeral range.
func Addrs(n int) ([]string, error) {
	given.Lock()
	defer given.Unlock()
	high := ephemeralLow()
	var addrs []string
	var held []func()
	defer func() {
		for _, release := range held {
			release()
		}
	}()
	for tries := 0; len(addrs) < n; tries++ {
		if tries > 1000*n {
			return nil, fmt.Errorf("freeport: no free port in [%d, %d)", lowest, high)
		}
		port := lowest + rand.IntN(high-lowest)
		if given.ports[port] {
			continue
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			ln.Close()
			continue
		}
		held = append(held, func() { ln.Close(); pc.Close() })
		given.ports[port] = true
		addrs = append(addrs, addr)
	}
	return addrs, nil
}

// ephemeralLow returns the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > lowest+1000 {
				return v
			}
		}
	}
	return 32768
}
