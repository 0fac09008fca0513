"""Pure numpy: from read weights to everything the report shows (no config, no files, no
HTML). Import the submodule that does the job: model (analyse_model), layer, units,
model_importance, answers (headlines), takeaways, compare, findings, series, ..."""
