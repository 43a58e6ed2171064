package main

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestRequestDeadlinesShareASlot(t *testing.T) {
	d := &requestDeadlines{timeout: time.Second, width: time.Hour}
	start := time.Now()
	a, b := d.context(), d.context()
	if a != b {
		t.Fatal("two requests in one slot got different contexts")
	}
	dl, ok := a.Deadline()
	if !ok || dl.Before(start.Add(time.Second)) || dl.After(time.Now().Add(time.Second+time.Hour)) {
		t.Fatalf("deadline %v after start, want between 1s and 1h1s", dl.Sub(start))
	}
}

func TestRequestDeadlinesNewSlotAndExpiry(t *testing.T) {
	d := &requestDeadlines{timeout: 20 * time.Millisecond, width: time.Millisecond}
	a := d.context()
	time.Sleep(2 * time.Millisecond)
	start := time.Now()
	b := d.context()
	if a == b {
		t.Fatal("a request after the slot's end got the old slot's context")
	}
	if dl, _ := b.Deadline(); dl.Before(start.Add(20 * time.Millisecond)) {
		t.Fatalf("deadline %v after start, want at least 20ms", dl.Sub(start))
	}
	select {
	case <-b.Done():
		if b.Err() != context.DeadlineExceeded {
			t.Fatalf("err %v, want DeadlineExceeded", b.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the context did not expire")
	}
}

// Every request, whichever goroutine wins a new slot, gets at least the
// whole timeout from its start.
func TestRequestDeadlinesConcurrent(t *testing.T) {
	d := &requestDeadlines{timeout: 50 * time.Millisecond, width: 100 * time.Microsecond}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				start := time.Now()
				dl, ok := d.context().Deadline()
				if !ok || dl.Before(start.Add(50*time.Millisecond)) {
					errs <- "a request got less than its timeout"
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
