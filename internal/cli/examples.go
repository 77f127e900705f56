package cli

// examples are the --help examples of the verbs whose constructors do not
// set one (the app verbs predate them).
var examples = map[string]string{
	"endpoint":         "  pando endpoint https://api.example.com\n  pando endpoint https://203.0.113.7 --skip-ssl-validation\n  pando endpoint",
	"login":            "  pando login -a https://api.example.com -u alice -o shop -s dev\n  pando login              # the configured API, asks for user and password",
	"logout":           "  pando logout",
	"push":             "  pando push shop -p ./site\n  pando push api -p app.jar -m 512M -i 2\n  pando push -f manifest.yml --var env=prod\n  pando push web --docker-image nginxinc/nginx-unprivileged:1.27",
	"apps":             "  pando apps",
	"app":              "  pando app shop",
	"logs":             "  pando logs shop\n  pando logs shop --recent",
	"scale":            "  pando scale shop -i 3\n  pando scale shop -m 512M -f",
	"start":            "  pando start shop",
	"stop":             "  pando stop shop",
	"restart":          "  pando restart shop",
	"restage":          "  pando restage shop",
	"delete":           "  pando delete shop -f\n  pando delete shop -f -r    # and its routes",
	"set-env":          "  pando set-env shop GREETING hello",
	"unset-env":        "  pando unset-env shop GREETING",
	"env":              "  pando env shop",
	"events":           "  pando events shop",
	"buildpacks":       "  pando buildpacks",
	"create-buildpack": "  pando create-buildpack my_buildpack ./my-buildpack.zip 1",
	"update-buildpack": "  pando update-buildpack my_buildpack -i 2\n  pando update-buildpack my_buildpack --disable",
	"delete-buildpack": "  pando delete-buildpack my_buildpack -f",
	"stacks":           "  pando stacks",
	"cells":            "  pando cells",
	"run-task":         "  pando run-task shop --command 'bin/migrate' --wait",
	"tasks":            "  pando tasks shop",
	"terminate-task":   "  pando terminate-task shop 3",
}
