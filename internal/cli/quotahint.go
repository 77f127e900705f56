package cli

import "strings"

// quotaReasons words the CF quota refusals (the error details are CF's,
// e.g. "memory quota_exceeded", which the cf CLI shows as they are).
var quotaReasons = []struct{ code, says string }{
	{"space_instance_memory_limit_exceeded", "the space's quota caps the memory of one instance"},
	{"instance_memory_limit_exceeded", "the org's quota caps the memory of one instance"},
	{"space_quota_exceeded", "the space's memory quota has too little left"},
	{"quota_exceeded", "the org's memory quota has too little left"},
	{"space_app_instance_limit_exceeded", "the space's quota caps the number of app instances"},
	{"app_instance_limit_exceeded", "the org's quota caps the number of app instances"},
}

// quotaHint explains a quota refusal in msg and says what to do, or "".
func quotaHint(msg string) string {
	var says []string
	for _, w := range strings.Fields(strings.ReplaceAll(msg, ",", " ")) {
		for _, r := range quotaReasons {
			if strings.TrimSuffix(w, ")") == r.code {
				says = append(says, r.says)
				break
			}
		}
	}
	if len(says) == 0 {
		return ""
	}
	return " (" + strings.Join(says, "; ") + ": lower -m or -i, scale down or stop other apps, or ask for a bigger quota; 'pando quotas' and 'pando space-quotas' show the limits)"
}
