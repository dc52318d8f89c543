package sqlstore

import (
	"context"
	"database/sql"
)

// Settings are deployment-wide values outside any tenant, such as secrets
// that every node of a deployment must agree on. An empty value reads back
// as nil.

var (
	qSettingGet    = newQuery(`SELECT value FROM settings WHERE key = ?`)
	qSettingInsert = newQuery(`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING`)
	qSettingDelete = newQuery(`DELETE FROM settings WHERE key = ?`)
)

func (s system) Setting(ctx context.Context, key string) ([]byte, error) {
	return s.setting(ctx, s.db.reader, key)
}

func (s system) setting(ctx context.Context, pool *sql.DB, key string) ([]byte, error) {
	var v []byte
	if err := pool.QueryRowContext(ctx, qSettingGet.text[s.db.ph], key).Scan(&v); err != nil {
		return nil, s.db.wrap(err, "setting %q", key)
	}
	return bytesOrNil(v), nil
}

func (s system) PutSettingIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error) {
	// The insert waits for a concurrent insert of the same key to end; the
	// read after it, on the writer, sees whichever value was committed first.
	if _, err := s.db.writer.ExecContext(ctx, qSettingInsert.text[s.db.ph], key, nullBytes(value)); err != nil {
		return nil, s.db.wrap(err, "put setting %q", key)
	}
	return s.setting(ctx, s.db.writer, key)
}

func (s system) DeleteSetting(ctx context.Context, key string) (bool, error) {
	res, err := s.db.writer.ExecContext(ctx, qSettingDelete.text[s.db.ph], key)
	if err != nil {
		return false, s.db.wrap(err, "delete setting %q", key)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.db.wrap(err, "delete setting %q", key)
	}
	return n > 0, nil
}
