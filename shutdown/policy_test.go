package shutdown

import "testing"

func TestDecide(t *testing.T) {
	for _, c := range []struct {
		p    Policy
		k    Kind
		want Action
	}{
		{Migrate, Reboot, ActMigrate}, {Migrate, PowerOff, ActMigrate}, {Migrate, Unknown, ActMigrate}, {Migrate, None, ActNone},
		{Freeze, Reboot, ActFreeze}, {Freeze, PowerOff, ActFreeze}, {Freeze, Unknown, ActFreeze}, {Freeze, None, ActNone},
		{Conditional, Reboot, ActFreeze}, {Conditional, PowerOff, ActMigrate}, {Conditional, Unknown, ActDefer}, {Conditional, None, ActNone},
	} {
		if got := Decide(c.p, c.k); got != c.want {
			t.Errorf("Decide(%s, %s) = %s, want %s", c.p, c.k, got, c.want)
		}
	}
}

func TestKindOf(t *testing.T) {
	for _, c := range []struct {
		jobs []Job
		want Kind
	}{
		{nil, None},
		{[]Job{{"meshd.service", "stop"}}, None},
		{[]Job{{"reboot.target", "start"}, {"shutdown.target", "start"}, {"meshd.service", "stop"}}, Reboot},
		{[]Job{{"kexec.target", "start"}}, Reboot},
		{[]Job{{"poweroff.target", "start"}, {"shutdown.target", "start"}}, PowerOff},
		{[]Job{{"halt.target", "start"}}, PowerOff},
		{[]Job{{"shutdown.target", "start"}}, PowerOff},
		{[]Job{{"reboot.target", "stop"}}, None},
	} {
		if got := KindOf(c.jobs); got != c.want {
			t.Errorf("KindOf(%v) = %s, want %s", c.jobs, got, c.want)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	for _, s := range []string{"migrate", "freeze", "conditional"} {
		if p, err := ParsePolicy(s); err != nil || string(p) != s {
			t.Errorf("ParsePolicy(%q) = %q, %v", s, p, err)
		}
	}
	if _, err := ParsePolicy("failover"); err == nil {
		t.Error("ParsePolicy(failover): no error")
	}
}

func TestKindOfType(t *testing.T) {
	for typ, want := range map[string]Kind{
		"reboot": Reboot, "kexec": Reboot, "soft-reboot": Reboot,
		"poweroff": PowerOff, "halt": PowerOff,
		"": Unknown, "suspend": Unknown, "power-off": Unknown,
	} {
		if got := KindOfType(typ); got != want {
			t.Errorf("KindOfType(%q) = %s, want %s", typ, got, want)
		}
	}
}
