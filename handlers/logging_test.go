package handlers_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

type lockedWriter struct {
	buf *bytes.Buffer
	mu  *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// bufferLogger logs everything, at debug level, as JSON into buf.
func bufferLogger(buf *bytes.Buffer, mu *sync.Mutex) *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(lockedWriter{buf, mu}), zapcore.DebugLevel))
}
