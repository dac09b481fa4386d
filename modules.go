package ratewarden

// Building Ratewarden into Caddy brings every module it ships.
import (
	_ "github.com/ratewarden/ratewarden/admin"
	_ "github.com/ratewarden/ratewarden/cli"
	_ "github.com/ratewarden/ratewarden/store/memory"
	_ "github.com/ratewarden/ratewarden/store/redis"
)
