package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestWords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want []string
	}{
		{"", nil},
		{"  \n\t ", nil},
		{"Hello, world!", []string{"hello", "world"}},
		{"Don't stop—won’t stop.", []string{"don't", "stop", "won't", "stop"}},
		{"'quoted' words'", []string{"quoted", "words"}},
		{"rock'n'roll", []string{"rock'n'roll"}},
		{"R2-D2 and C-3PO", []string{"r2", "d2", "and", "c", "3po"}},
		{"Straße STRASSE", []string{"straße", "strasse"}},
		{"naïve café", []string{"naïve", "café"}},
		{"e\u0301tude", []string{"e\u0301tude"}}, // combining accent stays inside
		{"日本語 テキスト", []string{"日本語", "テキスト"}},
		{"a''b", []string{"a", "b"}},
		{"end'", []string{"end"}},
	}
	for _, tt := range tests {
		if got := words(tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("words(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

func TestCount(t *testing.T) {
	t.Parallel()
	got := count("the cat and the hat; The bat and THE rat. A cat!", 3)
	want := response{Words: 12, Top: []wordCount{{"the", 4}, {"and", 2}, {"cat", 2}}}
	if got.Words != want.Words || !slices.Equal(got.Top, want.Top) {
		t.Errorf("count = %+v, want %+v", got, want)
	}
}

func TestCountTiesAndLimit(t *testing.T) {
	t.Parallel()
	// 12 distinct words, each once: the top 10 are the alphabetically first.
	var b strings.Builder
	for i := 11; i >= 0; i-- {
		fmt.Fprintf(&b, "w%02d ", i)
	}
	got := count(b.String(), topN)
	if got.Words != 12 || len(got.Top) != topN {
		t.Fatalf("count = %+v, want 12 words and %d entries", got, topN)
	}
	for i, wc := range got.Top {
		if want := fmt.Sprintf("w%02d", i); wc.Word != want || wc.Count != 1 {
			t.Errorf("top[%d] = %+v, want {%s 1}", i, wc, want)
		}
	}
}

func TestCountEmptyTopIsArray(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(count("", topN))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"words":0,"top":[]}`; got != want {
		t.Errorf("empty result = %s, want %s", got, want)
	}
}

func FuzzCount(f *testing.F) {
	for _, s := range []string{"", "a b a", "don't 'x' y'", "日本語\u0301", "\xff\xfe a", strings.Repeat("ab ", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got := count(text, topN)
		if len(got.Top) > topN {
			t.Fatalf("top has %d entries", len(got.Top))
		}
		sum := 0
		for i, wc := range got.Top {
			if wc.Count < 1 || wc.Word == "" {
				t.Fatalf("bad entry %+v", wc)
			}
			if i > 0 {
				prev := got.Top[i-1]
				if prev.Count < wc.Count || prev.Count == wc.Count && prev.Word >= wc.Word {
					t.Fatalf("top not ordered: %+v before %+v", prev, wc)
				}
			}
			sum += wc.Count
		}
		if sum > got.Words {
			t.Fatalf("top counts %d exceed the %d words", sum, got.Words)
		}
	})
}
