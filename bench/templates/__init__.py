"""Plugin skeletons written by `bench new` (`bench.scaffold`).

They are valid Python so that they ship with the package and are linted like the rest, but
they are never imported: `bench new` reads their text and renames "template-name",
`TemplateClass` and `template_model` (the model, also the module's name).
"""
