package main

import (
	"context"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The documentation rule (stated at the top of docs/configuration.md): every
// flag of every command and every USHER_* environment variable the code
// reads is named by exactly one table row of docs/configuration.md, where a
// row names one when a cell is exactly the name in backticks; a flag bound
// to a variable shares its row with it. Every command is in docs/cli.md.

// realFlags runs every command with --help and records the flag sets parse
// reads: flag name → commands taking it, and flag name → its variable.
func realFlags(t *testing.T) (commandsOf map[string][]string, envOf map[string]string) {
	t.Helper()
	commandsOf, envOf = map[string][]string{}, map[string]string{}
	flagSetParsed = func(fs *flag.FlagSet, env map[string]string) {
		fs.VisitAll(func(f *flag.Flag) {
			commandsOf["--"+f.Name] = append(commandsOf["--"+f.Name], fs.Name())
			if v := env[f.Name]; v != "" {
				envOf["--"+f.Name] = v
			}
		})
	}
	defer func() { flagSetParsed = nil }()
	for _, c := range commands() {
		if err := c.run(context.Background(), []string{"--help"}, io.Discard, io.Discard); err != errHelp {
			t.Fatalf("usher %s --help: got %v, want the help", c.name, err)
		}
	}
	if len(commandsOf) == 0 {
		t.Fatal("no flag set was parsed: does every command parse its flags with parse()?")
	}
	return commandsOf, envOf
}

var envName = regexp.MustCompile(`^USHER_[A-Z0-9_]+$`)

// realVariables returns the USHER_* variables the code reads: every Go
// string literal (outside tests) that is exactly such a name — the argument
// of os.Getenv, a flag's entry in parse's env map, a constant — and every
// one the shell scripts expand.
func realVariables(t *testing.T) []string {
	t.Helper()
	root := filepath.Join("..", "..")
	seen := map[string]bool{}
	shellVar := regexp.MustCompile(`\$\{?(USHER_[A-Z0-9_]+)`)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go"):
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(s) {
						seen[s] = true
					}
				}
				return true
			})
		case filepath.Base(filepath.Dir(path)) == "scripts":
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range shellVar.FindAllStringSubmatch(string(b), -1) {
				seen[m[1]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// docRows returns the cells of every Markdown table row in doc, header and
// separator rows included (they name nothing).
func docRows(doc string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			continue
		}
		line = strings.ReplaceAll(line, `\|`, "\x00")
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.TrimSpace(strings.ReplaceAll(c, "\x00", "|")))
		}
		rows = append(rows, cells)
	}
	return rows
}

// configDocProblems checks the rule on the text of docs/configuration.md.
func configDocProblems(doc string, commandsOf map[string][]string, envOf map[string]string, variables []string) []string {
	rows := docRows(doc)
	rowsNaming := func(name string) []int {
		var at []int
		for i, cells := range rows {
			if slices.Contains(cells, "`"+name+"`") {
				at = append(at, i)
			}
		}
		return at
	}
	var problems []string
	flags := make([]string, 0, len(commandsOf))
	for f := range commandsOf {
		flags = append(flags, f)
	}
	slices.Sort(flags)
	for _, f := range flags {
		at := rowsNaming(f)
		switch {
		case len(at) == 0:
			problems = append(problems, fmt.Sprintf("flag %s (of %s) has no row in docs/configuration.md; add one", f, strings.Join(commandsOf[f], ", ")))
		case len(at) > 1:
			problems = append(problems, fmt.Sprintf("flag %s is named by %d rows of docs/configuration.md; keep one", f, len(at)))
		case envOf[f] != "" && !slices.Contains(rows[at[0]], "`"+envOf[f]+"`"):
			problems = append(problems, fmt.Sprintf("flag %s is bound to %s, but its row in docs/configuration.md does not name it", f, envOf[f]))
		}
	}
	for _, v := range variables {
		switch at := rowsNaming(v); {
		case len(at) == 0:
			problems = append(problems, fmt.Sprintf("environment variable %s has no row in docs/configuration.md; add one", v))
		case len(at) > 1:
			problems = append(problems, fmt.Sprintf("environment variable %s is named by %d rows of docs/configuration.md; keep one", v, len(at)))
		}
	}
	return problems
}

func TestConfigurationDocsNameEveryFlagAndVariable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	commandsOf, envOf := realFlags(t)
	variables := realVariables(t)
	for _, v := range envOf {
		if !slices.Contains(variables, v) {
			variables = append(variables, v)
		}
	}
	if !slices.Contains(variables, "USHER_DB") || !slices.Contains(variables, "USHER_TEST_NOW_FILE") {
		t.Fatalf("the variables found in the code miss USHER_DB or USHER_TEST_NOW_FILE: %v", variables)
	}
	for _, p := range configDocProblems(string(b), commandsOf, envOf, variables) {
		t.Error(p)
	}

	t.Run("TheCheckFailsOnDrift", func(t *testing.T) {
		doc := string(b)
		drifted := map[string][]string{"--brand-new": {"serve"}}
		for f, c := range commandsOf {
			drifted[f] = c
		}
		want := []string{"flag --brand-new (of serve) has no row in docs/configuration.md; add one"}
		if got := configDocProblems(doc, drifted, envOf, variables); !slices.Equal(got, want) {
			t.Errorf("an undocumented flag: got %q, want %q", got, want)
		}
		twice := doc + "\n| `USHER_DB` | `--db` | x | y |\n"
		got := configDocProblems(twice, commandsOf, envOf, variables)
		want = []string{
			"flag --db is named by 2 rows of docs/configuration.md; keep one",
			"environment variable USHER_DB is named by 2 rows of docs/configuration.md; keep one",
		}
		if !slices.Equal(got, want) {
			t.Errorf("a variable listed twice: got %q, want %q", got, want)
		}
	})
}

// TestCLIDocsHaveEveryCommand: docs/cli.md has a section for every command
// group ("## usher notifications") and names every command in full.
func TestCLIDocsHaveEveryCommand(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range commands() {
		group, _, _ := strings.Cut(c.name, " ")
		if !regexp.MustCompile(`(?m)^#+ usher ` + regexp.QuoteMeta(group) + `\b`).MatchString(doc) {
			t.Errorf("docs/cli.md has no section (heading) for usher %s", group)
		}
		if !strings.Contains(doc, "usher "+c.name) {
			t.Errorf("docs/cli.md never names %q", "usher "+c.name)
		}
	}
}
