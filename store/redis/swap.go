package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ratewarden/ratewarden/store"
)

// swapScript changes one field of a records hash only while it holds the
// value its writer read. KEYS[1] is the hash, ARGV[1] the field (the
// record's id); ARGV[2] is '1' when the field must hold ARGV[3] and '0'
// when it must not exist; ARGV[4] is '1' to set the field to ARGV[5] and
// '0' to delete it. It returns 1 when it changed the field, 0 when the
// field held something else (and nothing was written).
var swapScript = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == '1' then
  if cur ~= ARGV[3] then return 0 end
elseif cur then
  return 0
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
`)

// SwapRecord sets or deletes one record while it still holds old (see
// store.RecordSwapper), atomically in one script, and publishes the change
// when it made one.
func (s *Store) SwapRecord(ctx context.Context, kind, id string, old, value []byte) (bool, error) {
	if err := checkRecord(kind, id); err != nil {
		return false, fmt.Errorf("swapping a record: %w", err)
	}
	swapped := false
	err := s.recordCall(ctx, fmt.Sprintf("swapping %s record %q in", kind, id), func(ctx context.Context, rc recordsClient) error {
		sc, ok := rc.(goredis.Scripter)
		if !ok {
			return fmt.Errorf("its client, a %T, cannot run scripts", rc)
		}
		n, err := swapScript.Run(ctx, sc, []string{s.recordsKey(kind)}, id, flag(old != nil), old, flag(value != nil), value).Int()
		if err != nil {
			return err
		}
		if swapped = n == 1; !swapped {
			return nil
		}
		return s.announce(ctx, rc, kind, id)
	})
	return swapped, err
}

// flag is a script's boolean argument.
func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

var _ store.RecordSwapper = (*Store)(nil)
