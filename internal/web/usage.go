package web

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/usage"
	"github.com/usherhq/usher/internal/usher"
)

// DefaultMaxIngestBody bounds a usage upload when Config.MaxIngestBody is 0.
// Bodies are streamed, so the bound is about time on the wire, not memory.
const DefaultMaxIngestBody = 1 << 30

// longRequestTimeout replaces the server's read and write timeouts for a
// usage upload or a CSV export, which may take minutes on a slow link.
const longRequestTimeout = 30 * time.Minute

// ingestFormats maps the media types POST /usage-events takes to formats.
var ingestFormats = map[string]usage.Format{
	"application/json":     usage.FormatJSON,
	"application/x-ndjson": usage.FormatNDJSON,
	"application/ndjson":   usage.FormatNDJSON,
	"application/jsonl":    usage.FormatNDJSON,
	"text/csv":             usage.FormatCSV,
}

const ingestTypes = "application/json (an array of events), application/x-ndjson (one event per line) or text/csv (a header line user,product,at, then one event per line)"

func ingestFormat(contentType string) (usage.Format, error) {
	if contentType == "" {
		return "", usher.Errorf(usher.EUNSUPPORTED, "Content-Type is missing; send %s", ingestTypes)
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err == nil {
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return "", usher.Errorf(usher.EUNSUPPORTED, "charset %q is not supported; send UTF-8", cs)
		}
		if f, ok := ingestFormats[mt]; ok {
			return f, nil
		}
	}
	return "", usher.Errorf(usher.EUNSUPPORTED, "Content-Type %q is not supported; send %s", contentType, ingestTypes)
}

// extendDeadlines gives a long upload or download time to finish. Writers
// that cannot set deadlines (some test recorders) keep the server's.
func extendDeadlines(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(longRequestTimeout)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
}

// ingestUsage streams the body through the decoder into the usage service,
// batch by batch: memory stays bounded whatever the body's size.
func (s *server) ingestUsage(w http.ResponseWriter, r *http.Request) {
	format, err := ingestFormat(r.Header.Get("Content-Type"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		// Read as is, a compressed body would only produce a rejection per line.
		s.writeError(w, r, usher.Errorf(usher.EUNSUPPORTED, "Content-Encoding %q is not supported; send the body uncompressed", ce))
		return
	}
	extendDeadlines(w)
	body := bufio.NewReaderSize(&bodyLimit{r: http.MaxBytesReader(w, r.Body, s.maxIngestBody)}, 64<<10)
	// The body is looked at only when the service pulls the first item,
	// that is after it has checked the actor may send usage at all.
	empty := false
	items := func(yield func(usage.Item) bool) {
		if isEmpty(body) {
			empty = true
			return
		}
		for it := range usage.Decode(body, format) {
			if !yield(it) {
				return
			}
		}
	}
	res, err := s.usage.Ingest(r.Context(), actorFrom(r.Context()), iter.Seq[usage.Item](items))
	switch {
	case err != nil && r.Context().Err() != nil:
		// The client went away; the batches stored so far stay stored.
		s.log.InfoContext(r.Context(), "usage upload ended by the client", slog.Int("accepted", res.Accepted), slog.Any("err", err))
	case err != nil:
		s.writeError(w, r, err)
	case empty:
		s.writeError(w, r, usher.Errorf(codeMalformed, "the request body is empty; send %s", ingestTypes))
	default:
		s.log.InfoContext(r.Context(), "usage events ingested", slog.String("format", string(format)),
			slog.Int("accepted", res.Accepted), slog.Int("duplicates", res.Duplicates), slog.Int("rejected", res.Rejected))
		s.writeJSON(w, r, http.StatusOK, res)
	}
}

// isEmpty reports whether only white space is left in b.
func isEmpty(b *bufio.Reader) bool {
	for {
		c, err := b.ReadByte()
		if err != nil {
			return true
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			_ = b.UnreadByte()
			return false
		}
	}
}

// bodyLimit words http.MaxBytesReader's error for the per-line answer.
type bodyLimit struct{ r io.Reader }

func (b *bodyLimit) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		err = fmt.Errorf("the body exceeds %d bytes; nothing after this point was read, send the rest in another request", tooLarge.Limit)
	}
	return n, err
}

// reportFilter reads the report's query parameters. Syntax problems go to p;
// the domain checks the values.
func reportFilter(p *usher.Problems, r *http.Request) usage.ReportFilter {
	q := r.URL.Query()
	// The report's pages go up to 1,000 rows, past the lists' limit, so it
	// reads limit itself; the domain checks the range.
	limit := 0
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			p.Add("limit", "must be a whole number between 1 and 1000")
		} else {
			limit = n
		}
	}
	cursor := q.Get("cursor")
	return usage.ReportFilter{
		Status:         q.Get("status"),
		Range:          usage.Range(q.Get("range")),
		Product:        q.Get("product"),
		SubscriptionID: queryID(p, r, "subscription"),
		Query:          q.Get("q"),
		Sort:           q.Get("sort"),
		Cursor:         cursor,
		Limit:          limit,
		Snapshot:       q.Get("snapshot"),
	}
}

// withEdgeProblems merges what the edge found wrong with the query string
// into the domain's validation error, so one answer names every field.
func withEdgeProblems(edge usher.Problems, err error) error {
	if len(edge) == 0 {
		return err
	}
	if err != nil && usher.ErrorCode(err) != usher.EINVALID {
		return edge.Err()
	}
	out := append(usher.Problems{}, edge...)
	for _, f := range usher.ErrorFields(err) {
		dup := false
		for _, e := range edge {
			dup = dup || e.Field == f.Field
		}
		if !dup {
			out = append(out, f)
		}
	}
	return out.Err()
}

// wantsCSV reports whether the Accept header prefers text/csv to JSON.
func wantsCSV(r *http.Request) bool {
	var csvQ, jsonQ float64
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil {
				continue
			}
		}
		switch mt {
		case "text/csv":
			csvQ = max(csvQ, q)
		case "application/json":
			jsonQ = max(jsonQ, q)
		}
	}
	return csvQ > 0 && csvQ >= jsonQ
}

func (s *server) usageReport(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Accept")
	var p usher.Problems
	f := reportFilter(&p, r)
	if wantsCSV(r) {
		s.usageReportCSV(w, r, f, p)
		return
	}
	rep, err := s.usage.Report(r.Context(), actorFrom(r.Context()), f)
	if err = withEdgeProblems(p, err); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, rep)
}

// usageReportByToken is usageReport behind bearer with one round trip
// fewer: the token and its holder are read in the report's first statement
// (usage.Service.ReportByToken), and decided as bearer decides them, in
// the same order. A request it cannot answer so (no bearer token, bad
// query text, a CSV export) goes to slow, the same handler behind bearer,
// so its error is the same as on every other route.
func (s *server) usageReportByToken(slow http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		if !ok || wantsCSV(r) || CheckQueryText(r.URL.Query()) != nil {
			slow(w, r)
			return
		}
		var p usher.Problems
		f := reportFilter(&p, r)
		a, rep, authErr, err := s.usage.ReportByToken(r.Context(), s.access.Admit, token, f)
		if r, ok = s.admit(w, r, a, authErr); !ok {
			return
		}
		w.Header().Add("Vary", "Accept")
		if err = withEdgeProblems(p, err); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeJSON(w, r, http.StatusOK, rep)
	}
}

// reportCSVHeader names the CSV export's columns.
var reportCSVHeader = []string{
	"name", "email", "product", "product_name", "contract_number", "plan", "assigned_at",
	"last_used", "days_used", "monthly_average", "status", "status_note", "source", "inactivity",
	"days_inactive", "group", "unassigned_at", "change",
}

// usageReportCSV streams every row matching the filter (no pages) as CSV.
// When usage was last processed is in the Usher-Usage-Processed-At header.
func (s *server) usageReportCSV(w http.ResponseWriter, r *http.Request, f usage.ReportFilter, edge usher.Problems) {
	if err := edge.Err(); err != nil {
		// The export ignores cursor and limit, but a wrong subscription id
		// must not widen it to every subscription.
		s.writeError(w, r, err)
		return
	}
	if err := WriteReportCSV(w, r, s.usage, actorFrom(r.Context()), f, s.log); err != nil {
		s.writeError(w, r, err)
	}
}

// WriteReportCSV streams every row of the Usage Report matching f (cursor
// and limit are ignored) to w as a CSV attachment, for the API and the
// console alike. It returns an error only while nothing has been written,
// so the caller can answer it in its own way; a failure once the file has
// begun cuts the connection (http.ErrAbortHandler), so the client sees a
// failure rather than a short file that looks complete.
func WriteReportCSV(w http.ResponseWriter, r *http.Request, use *usage.Service, a usher.Actor, f usage.ReportFilter, log *slog.Logger) error {
	f.Cursor, f.Limit = "", 0
	extendDeadlines(w)
	cw := csv.NewWriter(w)
	started := false
	head := func(h usage.Report) error {
		hd := w.Header()
		hd.Set("Content-Type", "text/csv; charset=utf-8")
		hd.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="usage-report-%s-%s.csv"`, h.Today, h.Range))
		hd.Set("Usher-Report-Range", string(h.Range))
		hd.Set("Usher-Report-Cutoff", h.Cutoff.String())
		if h.Snapshot != nil {
			hd.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="usage-report-%s.csv"`, h.Snapshot.ID))
			hd.Set("Usher-Report-Snapshot", h.Snapshot.ID)
			hd.Set("Usher-Report-As-Of", h.Snapshot.TakenAt.UTC().Format(time.RFC3339))
		}
		if h.ProcessedAt != nil {
			hd.Set("Usher-Usage-Processed-At", h.ProcessedAt.UTC().Format(time.RFC3339))
		}
		w.WriteHeader(http.StatusOK)
		started = true
		return cw.Write(reportCSVHeader)
	}
	row := func(r usage.ReportRow) error {
		last, inactiveDays, unassigned := "", "", ""
		if r.UnassignedAt != nil {
			unassigned = r.UnassignedAt.String()
		}
		if r.LastUsed != nil {
			last = r.LastUsed.String()
		}
		if r.DaysInactive != nil {
			inactiveDays = strconv.Itoa(*r.DaysInactive)
		}
		return cw.Write([]string{
			csvCell(r.Name), csvCell(r.Email), r.Product, csvCell(r.ProductName), csvCell(r.ContractNumber), string(r.Plan),
			r.AssignedAt.Format(time.DateOnly), last, strconv.Itoa(r.DaysUsed),
			strconv.FormatFloat(r.MonthlyAverage, 'f', 1, 64), string(r.Status), r.StatusNote, csvCell(SourceText(r.Sources)), string(r.Inactivity),
			inactiveDays, csvCell(GroupText(r.Sources)), unassigned, string(r.Change),
		})
	}
	err := use.EachRow(r.Context(), a, f, head, row)
	if err == nil {
		cw.Flush()
		err = cw.Error()
	}
	if err == nil {
		return nil
	}
	if !started {
		return err
	}
	if r.Context().Err() == nil && log != nil {
		log.ErrorContext(r.Context(), "usage report export failed", slog.Any("err", err))
	}
	panic(http.ErrAbortHandler)
}

// SourceText writes a seat's sources for people: "direct; group Design".
func SourceText(src []usher.SeatSource) string {
	parts := make([]string, len(src))
	for i, s := range src {
		if s.Direct {
			parts[i] = "direct"
		} else {
			parts[i] = "group " + s.GroupName
		}
	}
	return strings.Join(parts, "; ")
}

// GroupText says through which groups a seat is held, "Direct" for a
// seat assigned to the person themself: "Direct; Design" when both.
func GroupText(src []usher.SeatSource) string {
	parts := make([]string, len(src))
	for i, s := range src {
		if s.Direct {
			parts[i] = "Direct"
		} else {
			parts[i] = s.GroupName
		}
	}
	return strings.Join(parts, "; ")
}

// csvCell keeps a cell from being read as a formula by spreadsheets
// (names and contract numbers come from people).
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
