// Command wordcount counts the words of a text: given {"text":"…"} it returns
// {"words":N,"top":[{"word":…,"count":…},…]} with the ten most frequent
// words, most frequent first, ties broken alphabetically. Words are runs of
// letters, digits and combining marks, with inner apostrophes ("don't"),
// compared case-insensitively.
package main

import (
	"cmp"
	"slices"
	"strings"
	"unicode"

	"github.com/wardhq/ward/task"
)

// topN is how many words the result lists.
const topN = 10

// request is the payload.
type request struct {
	Text string `json:"text"`
}

// wordCount is one entry of the result's top list.
type wordCount struct {
	Word  string `json:"word"`
	Count int    `json:"count"`
}

// response is the result.
type response struct {
	Words int         `json:"words"`
	Top   []wordCount `json:"top"`
}

// isWordRune reports whether r belongs to a word.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
}

// isApostrophe reports whether r joins two parts of a word.
func isApostrophe(r rune) bool { return r == '\'' || r == '\u2019' }

// words splits text into lower-case words.
func words(text string) []string {
	var out []string
	runes := []rune(text)
	for i := 0; i < len(runes); {
		if !isWordRune(runes[i]) {
			i++
			continue
		}
		start := i
		for i < len(runes) {
			if isWordRune(runes[i]) {
				i++
				continue
			}
			// An apostrophe between word runes stays inside the word.
			if isApostrophe(runes[i]) && i+1 < len(runes) && isWordRune(runes[i+1]) {
				i++
				continue
			}
			break
		}
		w := strings.ToLower(string(runes[start:i]))
		out = append(out, strings.ReplaceAll(w, "\u2019", "'"))
	}
	return out
}

// count returns the total number of words and the top n by frequency.
func count(text string, n int) response {
	counts := map[string]int{}
	ws := words(text)
	for _, w := range ws {
		counts[w]++
	}
	top := make([]wordCount, 0, len(counts))
	for w, c := range counts {
		top = append(top, wordCount{Word: w, Count: c})
	}
	slices.SortFunc(top, func(a, b wordCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Word, b.Word)
	})
	if len(top) > n {
		top = top[:n]
	}
	return response{Words: len(ws), Top: top}
}

func main() {
	var req request
	if err := task.Decode(&req); err != nil {
		task.Fail(err)
	}
	if err := task.Result(count(req.Text, topN)); err != nil {
		task.Fail(err)
	}
}
