package console

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usherhq/usher/internal/access"
	"github.com/usherhq/usher/internal/usher"
)

// CSV import of users: the same file as `usher user import`, read by the
// same domain code (access.ReadImportCSV, access.ImportUsers). Uploading a
// file runs a dry run; its page lists what would change, or every problem
// by line, and offers Import, which posts the same file back (it travels in
// the page, so no upload is kept on the server between the two steps).
//
// Both steps run inside their request, in one transaction, and stream
// their page: the head first, then a line of progress now and then, then
// the result. Browsers show streamed HTML as it arrives, so progress needs
// no script; CSS shows only the latest line. A closed page cancels the
// request and rolls the transaction back: nothing is half imported.

const (
	importPath    = "/users/import"
	importRunPath = "/users/import/run"
	// maxImportFile bounds an uploaded file; it is said on the page.
	maxImportFile = 2 << 20
	// maxImportListed bounds the lines of changes a dry run lists.
	maxImportListed = 500
	// importProgressEvery spaces the progress lines a page gets.
	importProgressEvery = 500 * time.Millisecond
)

// formLimit is the largest body a POST to path may send: an import's file
// (twice, as base64 travels, a third larger), else a small form.
func formLimit(path string) int64 {
	switch path {
	case importPath:
		return maxImportFile + 64<<10
	case importRunPath:
		return maxImportFile*4/3 + 64<<10
	}
	return maxForm
}

func (s *server) importRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+importPath, s.signedIn(s.importPage))
	mux.HandleFunc("POST "+importPath, s.signedIn(s.uploadImport))
	mux.HandleFunc("POST "+importRunPath, s.signedIn(s.runImport))
}

// importView is the data of the import page: the upload form, or a
// streamed dry run or import.
type importView struct {
	Form *importPage
	Run  *importRunPage
}

type importPage struct {
	MaxSize string
	Columns []string
	// Problems are the file's problems, by line.
	Problems []importProblem
}

type importProblem struct {
	Line          int // 0: the whole file
	Field, Reason string
}

func (s *server) mayImport(w http.ResponseWriter, r *http.Request, v viewer) bool {
	if access.Can(v.Actor, access.ManageUsers, 0) {
		return true
	}
	s.renderStatus(w, r, http.StatusForbidden, &v, "Forbidden", "Only primary and secondary admins can import users.")
	return false
}

func (s *server) importPage(w http.ResponseWriter, r *http.Request, v viewer) {
	if !s.mayImport(w, r, v) {
		return
	}
	s.render(w, r, http.StatusOK, "import", page{Title: "Import users", Data: newImportPage(nil)})
}

func newImportPage(problems []importProblem) importView {
	return importView{Form: &importPage{MaxSize: "2 MB", Columns: access.ImportColumns, Problems: problems}}
}

// importFail shows the upload form again with the file's problems.
func (s *server) importFail(w http.ResponseWriter, r *http.Request, status int, err error) {
	s.render(w, r, status, "import", page{Title: "Import users", ErrorsTitle: "Nothing was imported: the file has problems, listed below.",
		Errors: []string{problemCount(err)}, Data: newImportPage(importProblems(err))})
}

func problemCount(err error) string {
	n := len(usher.ErrorFields(err))
	if n == 0 {
		return errorText(err)
	}
	return fmt.Sprintf("%d %s found.", n, pick(n, "problem", "problems"))
}

// uploadImport reads an uploaded file and runs its dry run.
func (s *server) uploadImport(w http.ResponseWriter, r *http.Request, v viewer) {
	if !s.mayImport(w, r, v) {
		return
	}
	if err := r.ParseMultipartForm(maxImportFile); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.importFail(w, r, http.StatusRequestEntityTooLarge, problem("file", "is larger than 2 MB; split it into smaller files"))
			return
		}
		s.importFail(w, r, http.StatusBadRequest, problem("file", "could not be read: send the form with a CSV file"))
		return
	}
	defer func() { _ = r.MultipartForm.RemoveAll() }()
	f, hdr, err := r.FormFile("file")
	if err != nil {
		s.importFail(w, r, http.StatusUnprocessableEntity, problem("file", "is required: choose a CSV file"))
		return
	}
	defer f.Close()
	content, err := io.ReadAll(io.LimitReader(f, maxImportFile+1))
	if err != nil {
		s.importFail(w, r, http.StatusBadRequest, problem("file", "could not be read"))
		return
	}
	if len(content) > maxImportFile {
		s.importFail(w, r, http.StatusRequestEntityTooLarge, problem("file", "is larger than 2 MB; split it into smaller files"))
		return
	}
	s.importStream(w, r, v, content, fileName(hdr.Filename), true)
}

// runImport imports the file a dry run checked, which its page sent back.
func (s *server) runImport(w http.ResponseWriter, r *http.Request, v viewer) {
	if !s.mayImport(w, r, v) {
		return
	}
	content, err := base64.StdEncoding.DecodeString(r.PostForm.Get("content"))
	if err != nil || len(content) == 0 || len(content) > maxImportFile {
		s.importFail(w, r, http.StatusUnprocessableEntity, problem("file", "did not come back from the dry run's page: upload it again"))
		return
	}
	s.importStream(w, r, v, content, fileName(r.PostForm.Get("name")), false)
}

func problem(field, reason string) error {
	return (&usher.Problems{{Field: field, Reason: reason}}).Err()
}

// fileName keeps a file's name fit to show on one line.
func fileName(name string) string {
	name = strings.TrimSpace(name[strings.LastIndexAny(name, `/\`)+1:])
	if usher.TextProblem(name) != "" || name == "" {
		return "the file"
	}
	if utf8.RuneCountInString(name) > 100 {
		name = string([]rune(name)[:100]) + "…"
	}
	return name
}

// importRunPage is the streamed page of a dry run or an import.
type importRunPage struct {
	DryRun bool
	Name   string
	Lines  int
	Stream template.HTML // where progress goes
}

// importResult is what the end of a streamed page shows.
type importResult struct {
	DryRun   bool
	Name     string
	Result   access.ImportResult
	Changes  []importChange
	More     int // lines with changes not listed
	Problems []importProblem
	Failed   string // an internal failure, said in one sentence
	// Content is the file, for Import after a clean dry run.
	Content string
	// Next is where the browser goes after an import.
	Next string
}

type importChange struct {
	Line    int
	Email   string
	Changes string
}

// streamMark is where a streamed page's progress and result go. The page's
// progress block is open there; the result closes it.
const streamMark = "<!--stream-->"

func (s *server) importStream(w http.ResponseWriter, r *http.Request, v viewer, content []byte, name string, dryRun bool) {
	ctx := r.Context()
	if !utf8.Valid(content) {
		s.importFail(w, r, http.StatusUnprocessableEntity, problem("file", "is not UTF-8 text: save it as CSV UTF-8"))
		return
	}
	rows, err := access.ReadImportCSV(bytes.NewReader(content))
	if err != nil {
		if usher.ErrorCode(err) != usher.EINVALID {
			s.renderError(w, r, &v, err)
			return
		}
		s.importFail(w, r, http.StatusUnprocessableEntity, err)
		return
	}
	if len(rows) == 0 {
		s.importFail(w, r, http.StatusUnprocessableEntity, problem("file", "has no user lines: one user a line after the line of column names"))
		return
	}
	title := "Importing users"
	if dryRun {
		title = "Checking the import"
	}
	p := page{Title: title, Viewer: &v, Data: importView{Run: &importRunPage{DryRun: dryRun, Name: name, Lines: len(rows), Stream: streamMark}}}
	p.Nav = s.navFor(v, importPath)
	var buf bytes.Buffer
	t := s.pages["import"]
	if err := t.Execute(&buf, p); err != nil {
		s.renderError(w, r, &v, fmt.Errorf("render import page: %w", err))
		return
	}
	head, tail, _ := strings.Cut(buf.String(), streamMark)

	// The page is written while the import runs, for longer than the
	// server's write timeout allows a whole answer.
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Accel-Buffering", "no") // proxies: pass progress on
	w.WriteHeader(http.StatusOK)
	flush := func(s string) {
		_, _ = io.WriteString(w, s)
		_ = rc.Flush()
	}
	flush(head)
	verb := "Imported"
	if dryRun {
		verb = "Checked"
	}
	var last time.Time
	progress := func(done, total int) {
		if done < total && time.Since(last) < importProgressEvery {
			return
		}
		last = time.Now()
		end := "…"
		if done == total {
			end = "."
		}
		flush(fmt.Sprintf("<p>%s %s of %s %s%s</p>\n", verb, thousands(done), thousands(total), pick(total, "line", "lines"), end))
	}
	res, err := s.access.ImportUsers(ctx, v.Actor, rows, dryRun, progress)
	out := importResult{DryRun: dryRun, Name: name, Result: res}
	switch {
	case err == nil:
		for i, c := range res.Changes {
			if i == maxImportListed {
				out.More = len(res.Changes) - i
				break
			}
			out.Changes = append(out.Changes, importChange{Line: c.Line, Email: c.Email, Changes: strings.Join(c.Changes, "; ")})
		}
		if dryRun {
			out.Content = base64.StdEncoding.EncodeToString(content)
		} else {
			out.Next = "/users"
			if err := s.auth.SetFlash(ctx, v.token, importSummary(name, res)); err != nil {
				s.log.WarnContext(ctx, "keep message in session", slog.Any("err", err))
			}
		}
	case usher.ErrorCode(err) == usher.EINVALID || usher.ErrorCode(err) == usher.ENOSEATS || usher.ErrorCode(err) == usher.ECONFLICT:
		out.Problems = importProblems(err)
	case usher.ErrorCode(err) == usher.EFORBIDDEN:
		out.Failed = errorText(err)
	default:
		if ctx.Err() != nil {
			return // the browser left; the transaction was rolled back
		}
		s.log.ErrorContext(ctx, "import users", slog.Any("err", err))
		out.Failed = "An internal error stopped the import; nothing was imported. It has been logged; try again in a moment."
	}
	buf.Reset()
	if err := t.ExecuteTemplate(&buf, "importresult", out); err != nil {
		s.log.ErrorContext(ctx, "render import result", slog.Any("err", err))
		flush("</div><p>Something went wrong showing the result.</p>" + tail)
		return
	}
	flush(buf.String() + tail)
}

// importSummary is the message an import leaves in the session.
func importSummary(name string, res access.ImportResult) string {
	return fmt.Sprintf("Imported %s (%d %s): %d %s created, %d updated, %d %s created, %d %s, %d %s granted, %d %s given, %d waiting for a seat.",
		name, res.Lines, pick(res.Lines, "line", "lines"),
		res.UsersCreated, pick(res.UsersCreated, "user", "users"), res.UsersUpdated,
		res.GroupsCreated, pick(res.GroupsCreated, "group", "groups"),
		res.MembersAdded, pick(res.MembersAdded, "membership", "memberships"),
		res.RolesGranted, pick(res.RolesGranted, "role", "roles"),
		res.SeatsAssigned, pick(res.SeatsAssigned, "seat", "seats"), res.Waiting)
}

// lineField reads the domain's "line N: field" problem names.
var lineField = regexp.MustCompile(`^line (\d+)(?:: (.*))?$`)

// importProblems lists a validation error's problems by line.
func importProblems(err error) []importProblem {
	var out []importProblem
	for _, f := range usher.ErrorFields(err) {
		p := importProblem{Field: f.Field, Reason: f.Reason}
		if m := lineField.FindStringSubmatch(f.Field); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Field = m[2]
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		out = append(out, importProblem{Reason: errorText(err)})
	}
	return out
}

// thousands writes n with thousands separators: 12,345.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
