package zongzi

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/lni/dragonboat/v4/logger"
)

var dragonboatLoggerOnce sync.Once

// routeDragonboatLogs sends Dragonboat's logs to l, at error level and
// above. Dragonboat allows this once per process.
func routeDragonboatLogs(l *slog.Logger) {
	dragonboatLoggerOnce.Do(func() {
		logger.SetLoggerFactory(func(pkg string) logger.ILogger {
			return &slogAdapter{log: l.With("pkg", pkg), level: logger.ERROR}
		})
	})
}

// slogAdapter is a Dragonboat logger.ILogger writing to slog.
type slogAdapter struct {
	mu    sync.Mutex
	log   *slog.Logger
	level logger.LogLevel
}

func (s *slogAdapter) SetLevel(l logger.LogLevel) {
	s.mu.Lock()
	s.level = l
	s.mu.Unlock()
}

func (s *slogAdapter) logf(l logger.LogLevel, sl slog.Level, format string, args ...any) {
	s.mu.Lock()
	enabled := l <= s.level
	s.mu.Unlock()
	if enabled {
		s.log.Log(context.Background(), sl, fmt.Sprintf(format, args...))
	}
}

func (s *slogAdapter) Debugf(f string, a ...any)   { s.logf(logger.DEBUG, slog.LevelDebug, f, a...) }
func (s *slogAdapter) Infof(f string, a ...any)    { s.logf(logger.INFO, slog.LevelInfo, f, a...) }
func (s *slogAdapter) Warningf(f string, a ...any) { s.logf(logger.WARNING, slog.LevelWarn, f, a...) }
func (s *slogAdapter) Errorf(f string, a ...any)   { s.logf(logger.ERROR, slog.LevelError, f, a...) }
func (s *slogAdapter) Panicf(f string, a ...any) {
	msg := fmt.Sprintf(f, a...)
	s.log.Error(msg)
	panic(msg)
}
