package zongzi

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
)

// TestBusCodesKeepTimeouts checks that a handler's error that wraps a
// context's error crosses the bus as that error, so a deadline that passes
// on the serving host (a read batch's, say) comes back as ErrTimeout, not
// as an error no sentinel matches.
func TestBusCodesKeepTimeouts(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
		want error
	}{
		{fmt.Errorf("shard 1: read: %w", ErrTimeout), codes.DeadlineExceeded, ErrTimeout},
		{context.DeadlineExceeded, codes.DeadlineExceeded, ErrTimeout},
		{fmt.Errorf("batch: %w", context.DeadlineExceeded), codes.DeadlineExceeded, ErrTimeout},
		{context.Canceled, codes.Canceled, context.Canceled},
	} {
		code := busCodes.ToCode(tc.err)
		if codes.Code(code) != tc.code {
			t.Errorf("%v: code %v, want %v", tc.err, codes.Code(code), tc.code)
		}
		if err := busCodes.ToError(code, tc.err.Error()); !errors.Is(err, tc.want) {
			t.Errorf("%v: back as %v, want %v", tc.err, err, tc.want)
		}
	}
}
