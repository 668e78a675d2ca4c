"""`check --fix`: each finding's structured fix written into the file it was found in.

One editor per format (yaml, json_, toml, python), each keeping every byte it
does not edit; apply.py chooses the findings (safe, or unsafe too), runs the
editors and re-checks until nothing more applies. Imported only when --fix or
--diff is given: a plain `check` never loads tomlkit or libcst.
"""
