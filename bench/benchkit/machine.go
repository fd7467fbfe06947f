package benchkit

import (
	"os/exec"
	"strings"
)

// Machine describes where the benchmarks ran, from the commands an operator
// would type (nproc, free, uname, lscpu), so figures can be compared with
// the machine they came from.
func Machine() string {
	var b strings.Builder
	for _, c := range [][]string{{"nproc"}, {"free", "-m"}, {"uname", "-a"}, {"lscpu"}} {
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		b.WriteString("$ " + strings.Join(c, " ") + "\n")
		if err != nil {
			b.WriteString("(" + err.Error() + ")\n")
		}
		text := string(out)
		if c[0] == "lscpu" {
			text = keepLines(text, "Architecture", "Model name", "CPU(s):", "Thread(s) per core",
				"Core(s) per socket", "Socket(s)", "Hypervisor vendor", "Virtualization", "L3 cache", "CPU MHz", "BogoMIPS")
		}
		b.WriteString(strings.TrimRight(text, "\n") + "\n")
	}
	return b.String()
}

func keepLines(text string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		t := strings.TrimSpace(l)
		for _, p := range prefixes {
			if strings.HasPrefix(t, p) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
