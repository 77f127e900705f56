# Shared by bin/finalize and bin/release.

# ruby_web_command BUILD_DIR prints the web start command CF's ruby
# buildpack gives: a Rails app (bin/rails and config/application.rb) runs
# `bin/rails server`, a Rack app (config.ru) `bundle exec rackup`, both on
# $PORT on every address; nothing otherwise. (A Procfile wins over it.)
ruby_web_command() {
  local build_dir=$1
  if [[ -f $build_dir/bin/rails && -f $build_dir/config/application.rb ]]; then
    echo 'bin/rails server -b 0.0.0.0 -p $PORT -e $RAILS_ENV'
  elif [[ -f $build_dir/config.ru ]]; then
    echo 'bundle exec rackup config.ru -p $PORT -o 0.0.0.0'
  fi
}
