package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/xsell/xsell/internal/database"
	"github.com/xsell/xsell/internal/httpapi"
)

// session is a signed-in console user: the role and name of the API key they signed in with.
type session struct {
	Role      httpapi.Role `db:"role"`
	KeyName   string       `db:"key_name"`
	CSRF      string       `db:"csrf_token"`
	CreatedAt time.Time    `db:"created_at"`
	LastSeen  time.Time    `db:"last_seen_at"`
	ExpiresAt time.Time    `db:"expires_at"`
}

// Admin reports whether the session may change things.
func (s *session) Admin() bool { return s != nil && s.Role == httpapi.RoleAdmin }

// sessions keeps console sessions in Postgres, so that every server behind a load balancer
// knows them. The cookie carries a random id; the table keeps only its hash.
type sessions struct {
	db   *sqlx.DB
	now  func() time.Time
	ttl  time.Duration // from sign-in to expiry, whatever the activity
	idle time.Duration // without a request, a session ends sooner
}

// randomToken returns 32 random bytes, URL-safe: a session id or a CSRF token.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashID(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// create opens a session for key and returns the id for its cookie.
func (s *sessions) create(ctx context.Context, key httpapi.APIKey) (string, *session, error) {
	id := randomToken()
	now := s.now().UTC()
	sess := &session{Role: key.Role, KeyName: key.Name, CSRF: randomToken(), CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(s.ttl)}
	// Sessions that ended are removed here, on the way: sign-ins are rare, and the index on
	// expires_at makes it cheap.
	if _, err := s.db.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_at < $1 OR last_seen_at < $2`,
		now, now.Add(-s.idle)); err != nil {
		return "", nil, database.Wrap(err, "removing ended console sessions")
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO console_sessions
		(id_hash, role, key_name, csrf_token, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $5, $6)`,
		hashID(id), string(sess.Role), sess.KeyName, sess.CSRF, now, sess.ExpiresAt); err != nil {
		return "", nil, database.Wrap(err, "opening a console session")
	}
	return id, sess, nil
}

// lookup returns the live session of a cookie's id, or nil when it is unknown or has ended.
// It notes the activity, at most once a minute, for the idle timeout.
func (s *sessions) lookup(ctx context.Context, id string) (*session, error) {
	if id == "" || len(id) > 100 {
		return nil, nil
	}
	var sess session
	err := s.db.GetContext(ctx, &sess, `SELECT role, key_name, csrf_token, created_at, last_seen_at, expires_at
		FROM console_sessions WHERE id_hash = $1`, hashID(id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, database.Wrap(err, "reading the console session")
	}
	now := s.now()
	if !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeen) >= s.idle {
		return nil, s.delete(ctx, id)
	}
	if now.Sub(sess.LastSeen) > time.Minute {
		if _, err := s.db.ExecContext(ctx, `UPDATE console_sessions SET last_seen_at = $2 WHERE id_hash = $1`,
			hashID(id), now.UTC()); err != nil {
			return nil, database.Wrap(err, "noting console activity")
		}
	}
	return &sess, nil
}

// delete ends a session.
func (s *sessions) delete(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM console_sessions WHERE id_hash = $1`, hashID(id)); err != nil {
		return database.Wrap(err, "ending the console session")
	}
	return nil
}

// sameToken compares a token from a form with the expected one in constant time.
func sameToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
