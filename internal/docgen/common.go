package docgen

import (
	"fmt"
	"strings"

	"github.com/canary-pi/canary-pi/appliance/config"
)

// Files are the paths every page names, as the package and its unit set
// them up.
var Files = []Block{
	Item("`/etc/canaryd/`", "The config directory: its `*.toml` files, merged (canaryd.toml(5)). The package installs a commented `canaryd.toml` there as a conffile."),
	Item("`/var/lib/canaryd/`", "The state directory (systemd's `StateDirectory=`): the rollback latch, the rollout's progress, the incident reports and, with `journal.file`, the request journal. It survives restarts and reboots."),
	Item("`"+config.DefaultSocket+"`", "The admin socket (`admin.socket`) canaryctl talks to: HTTP over a unix socket, mode 0660, group `"+config.DefaultSocketGroup+"`."),
	Item("`/boot/firmware/canaryd/`", "On a Pi flashed with `make image`: a config on the boot partition, installed into `/etc/canaryd` at the next start when it changed and validates (`canaryd -import-config`)."),
	Item("`/usr/share/canaryd/canaryd.toml`", "The example config as the package ships it, to start again from."),
	Item("`/usr/lib/systemd/system/canaryd.service`", "The unit that runs canaryd, enabled by the package; `canaryd.socket` optionally holds the proxy's port across restarts; `canaryd-demo@.service` runs the demo backends the example config proxies to."),
}

// Environment are the variables every page names.
var Environment = []Block{
	Item("`CANARYD_SOCKET`", "The admin socket canaryctl talks to when `-socket` is not given; else `"+config.DefaultSocket+"`."),
	Item("`STATE_DIRECTORY`", "Set by systemd from the unit's `StateDirectory=`: its first path is canaryd's state directory when `-state-dir` is not given; else `/var/lib/canaryd`."),
}

// pages are the project's manual pages, name and section, for SEE ALSO.
var pages = [][2]string{{"canaryd", "8"}, {"canaryctl", "8"}, {"canaryd.toml", "5"}}

// SeeAlso is the SEE ALSO line of the page name(section): the other pages,
// then systemd's.
func SeeAlso(name, section string) string {
	var refs []string
	for _, p := range pages {
		if p[0] != name || p[1] != section {
			refs = append(refs, fmt.Sprintf("`%s`(%s)", p[0], p[1]))
		}
	}
	refs = append(refs, "`systemctl`(1), `journalctl`(1)")
	return strings.Join(refs, ", ") + "; `systemctl status canaryd` and `journalctl -u canaryd` show the daemon and its log. `/usr/share/doc/canaryd/README.md` is the manual."
}
