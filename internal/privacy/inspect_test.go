package privacy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wardhq/ward"
)

func TestPointers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`{"a":1,"b":{"c":"x","d":[true,null,{}]},"e":[],"f":null}`, []string{"/a", "/b/c", "/b/d/0", "/b/d/2", "/e", "/f"}},
		{` {"a/b":{"m~n":2}} `, []string{"/a~1b/m~0n"}},
		{`{"\u0041\/":0}`, []string{"/A~1"}},
		{`[null,null]`, nil},
		{`[[],{}]`, []string{"/0", "/1"}},
		{`{}`, []string{""}},
		{`"tok_x"`, []string{""}},
		{`null`, []string{""}},
		{`{"items":[{"qty":1,"p":null},null,{"qty":2}]}`, []string{"/items/0/qty", "/items/0/p", "/items/2/qty"}},
	} {
		got, truncated, err := Pointers([]byte(tc.in))
		if err != nil || truncated || !slices.Equal(got, tc.want) {
			t.Errorf("Pointers(%s) = %q, %v, %v; want %q", tc.in, got, truncated, err, tc.want)
		}
	}
}

func TestPointersNotJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{``, ` `, `{`, `{"a":1}x`, `[1,]`, `{"a" 1}`, `nul`, `[1] [2]`, strings.Repeat("[", 10001) + strings.Repeat("]", 10001)} {
		_, _, err := Pointers([]byte(in))
		if ward.CodeOf(err) != CodeNotJSON {
			t.Errorf("Pointers(%.20q) = %v; want code %s", in, err, CodeNotJSON)
		}
	}
}

func TestPointersTruncated(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"x":[`)
	for i := range MaxReported + 5 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d", i)
	}
	b.WriteString(`],"y":1}`)
	got, truncated, err := Pointers([]byte(b.String()))
	if err != nil || !truncated || len(got) != MaxReported || got[MaxReported-1] != "/x/"+strconv.Itoa(MaxReported-1) {
		t.Fatalf("Pointers = %d pointers (last %q), truncated %v, %v", len(got), got[len(got)-1], truncated, err)
	}
}

// TestPointersOfProjection checks that what Pointers finds in a projected
// payload is what Apply reported keeping, but for null array elements.
func TestPointersOfProjection(t *testing.T) {
	t.Parallel()
	p := mustCompile(t, ward.Input{Fields: []string{"/order/items/*/qty", "/order/items/2/sku", "/customer/id", "/tags"}, Tokenize: []string{"/customer/id"}})
	in := `{"order":{"items":[{"qty":1,"sku":"a"},{"sku":"b"},{"qty":null,"sku":"c"},null]},"customer":{"id":"c-1","email":"x"},"tags":[null,"t"]}`
	res, err := p.Apply([]byte(in), func(string, []byte) (string, error) { return "tok_" + strings.Repeat("a", TokenLen-4), nil })
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := Pointers(res.Payload)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/order/items/0/qty", "/order/items/1", "/order/items/2/qty", "/order/items/2/sku", "/customer/id", "/tags/1"}
	if !slices.Equal(got, want) {
		t.Fatalf("Pointers(%s) = %q; want %q", res.Payload, got, want)
	}
	for _, f := range res.Fields {
		if !slices.Contains(got, f) && f != "/order/items/3" && f != "/tags/0" {
			t.Errorf("Apply reported %s, which Pointers does not find", f)
		}
	}
}

// refPointers is Pointers written with encoding/json's tokenizer.
func refPointers(b []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []string
	var value func(path string, inArray bool) error
	value = func(path string, inArray bool) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			n := 0
			for ; dec.More(); n++ {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				esc := strings.NewReplacer("~", "~0", "/", "~1").Replace(k.(string))
				if err := value(path+"/"+esc, false); err != nil {
					return err
				}
			}
			if n == 0 {
				out = append(out, path)
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			n := 0
			for ; dec.More(); n++ {
				if err := value(path+"/"+strconv.Itoa(n), true); err != nil {
					return err
				}
			}
			if n == 0 {
				out = append(out, path)
			}
			_, err = dec.Token()
			return err
		case nil:
			if !inArray {
				out = append(out, path)
			}
			return nil
		}
		out = append(out, path)
		return nil
	}
	if err := value("", false); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data")
	}
	return out, nil
}

func FuzzPointers(f *testing.F) {
	for _, s := range []string{`{"a":[1,null,{"b":[]}],"c~/":{}}`, `[null]`, `"x"`, `{"a":1,}`, `{"\u00e9":[[[]]]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, truncated, err := Pointers(b)
		if (err == nil) != json.Valid(b) {
			t.Fatalf("Pointers(%q) error %v, json.Valid %v", b, err, json.Valid(b))
		}
		if err != nil {
			if ward.CodeOf(err) != CodeNotJSON {
				t.Fatalf("Pointers(%q) = %v; want code %s", b, err, CodeNotJSON)
			}
			return
		}
		if !utf8.Valid(b) {
			return // encoding/json replaces invalid UTF-8 in keys; Pointers keeps the bytes
		}
		want, rerr := refPointers(b)
		if rerr != nil {
			return // nested past encoding/json's own limit
		}
		if len(want) > MaxReported {
			want = want[:MaxReported]
			if !truncated {
				t.Fatalf("Pointers(%q) not truncated at %d", b, MaxReported)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Pointers(%q) = %q; want %q", b, got, want)
		}
	})
}
