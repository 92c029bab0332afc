package analysis

import (
	"strings"
	"testing"
)

func TestSubstitutePlaceholders(t *testing.T) {
	lits := []string{"'a $2'", "'it''s $1'", "3", "4", "5", "6", "7", "8", "9", "'ten'"}
	for _, c := range []struct{ in, want string }{
		{"SELECT $1, $2", "SELECT 'a $2', 'it''s $1'"},
		{"SELECT $10, $1", "SELECT 'ten', 'a $2'"},
		{"SELECT '$1', \"$2\", $3", "SELECT '$1', \"$2\", 3"},
		{"SELECT 'it''s $1' || $1", "SELECT 'it''s $1' || 'a $2'"},
		{"SELECT $$ $1 $$, $tag$ $2 $tag$, $3", "SELECT $$ $1 $$, $tag$ $2 $tag$, 3"},
		{"SELECT $1 -- $2\n, /* $3 */ $4", "SELECT 'a $2' -- $2\n, /* $3 */ 4"},
		{"SELECT a$1, $1::text", "SELECT a$1, 'a $2'::text"},
	} {
		got, err := substitutePlaceholders(c.in, lits)
		if err != nil || got != c.want {
			t.Errorf("substitute(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"SELECT $11", "SELECT $0"} {
		if _, err := substitutePlaceholders(bad, lits); err == nil {
			t.Errorf("%q: no error for a placeholder without an argument", bad)
		}
	}
}

// TestTheNoteNamesTheSettingsPsqlNeeds: --sql's comment gives the PGOPTIONS the statement runs
// with (scripts/bench/analyze.sh times psql with them), the rows form's enable_sort included.
func TestTheNoteNamesTheSettingsPsqlNeeds(t *testing.T) {
	for form, want := range map[string]string{
		FormRollupRows:   "(PGOPTIONS='-c jit=off -c enable_sort=off' for psql)",
		FormRollupGroups: "(PGOPTIONS='-c jit=off' for psql)",
	} {
		if note := (DataSource{Form: form}).note(); !strings.Contains(note, want) {
			t.Errorf("form %s: note %q does not say %s", form, note, want)
		}
	}
}
