package handlers

import (
	"strconv"
	"testing"
)

// TestHubBoundsStreams: one payment has at most maxStreamsPerRef live
// pages and a site at most maxStreams; a closed one frees its place.
func TestHubBoundsStreams(t *testing.T) {
	h := newHub()
	var cancels []func()
	for i := range maxStreamsPerRef {
		_, cancel, ok := h.subscribe("r1")
		if !ok {
			t.Fatalf("stream %d of one payment refused", i+1)
		}
		cancels = append(cancels, cancel)
	}
	if _, _, ok := h.subscribe("r1"); ok {
		t.Fatalf("stream %d of one payment accepted", maxStreamsPerRef+1)
	}
	cancels[0]()
	if _, _, ok := h.subscribe("r1"); !ok {
		t.Fatal("a freed place was not given again")
	}
	for i := h.open; i < maxStreams; i++ {
		if _, _, ok := h.subscribe("ref-" + strconv.Itoa(i)); !ok {
			t.Fatalf("stream %d of the site refused", i+1)
		}
	}
	if _, _, ok := h.subscribe("another"); ok {
		t.Fatalf("stream %d of the site accepted", maxStreams+1)
	}
	cancels[1]()
	if _, _, ok := h.subscribe("another"); !ok {
		t.Fatal("a freed place of the site was not given again")
	}
}
