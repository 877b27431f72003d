# Stand-in for nixpkgs' `lib`: only the functions nix/ and the tests use,
# implemented with nixpkgs' semantics on top of builtins.
let
  lib = rec {
    inherit (builtins)
      head
      tail
      elem
      attrNames
      attrValues
      filter
      foldl'
      isList
      isAttrs
      isString
      isFunction
      genList
      length
      concatLists
      concatStringsSep
      removeAttrs
      listToAttrs
      ;

    id = x: x;
    const = x: _: x;
    fix =
      f:
      let
        x = f x;
      in
      x;
    extends =
      overlay: f: final:
      let
        prev = f final;
      in
      prev // overlay final prev;

    toList = x: if isList x then x else [ x ];
    optional = cond: x: if cond then [ x ] else [ ];
    optionals = cond: xs: if cond then xs else [ ];
    optionalString = cond: s: if cond then s else "";
    optionalAttrs = cond: as: if cond then as else { };

    assertMsg = pred: msg: pred || builtins.throw msg;

    nameValuePair = name: value: { inherit name value; };
    mapAttrs' = f: set: listToAttrs (map (attr: f attr set.${attr}) (attrNames set));
    mapAttrsToList = f: attrs: map (name: f name attrs.${name}) (attrNames attrs);
    genAttrs = names: f: listToAttrs (map (n: nameValuePair n (f n)) names);
    filterAttrs =
      pred: set:
      listToAttrs (
        concatMap (
          name:
          let
            v = set.${name};
          in
          if pred name v then [ (nameValuePair name v) ] else [ ]
        ) (attrNames set)
      );
    concatMap = f: list: concatLists (map f list);
    concatStrings = builtins.concatStringsSep "";
    concatMapStrings = f: list: builtins.concatStringsSep "" (map f list);
    concatMapStringsSep = sep: f: list: builtins.concatStringsSep sep (map f list);

    hasPrefix = pref: str: builtins.substring 0 (builtins.stringLength pref) str == pref;
    removePrefix =
      prefix: str:
      let
        n = builtins.stringLength prefix;
      in
      if hasPrefix prefix str then builtins.substring n (builtins.stringLength str - n) str else str;

    toLower = builtins.replaceStrings upperChars lowerChars;
    lowerChars = builtins.genList (i: builtins.substring i 1 "abcdefghijklmnopqrstuvwxyz") 26;
    upperChars = builtins.genList (i: builtins.substring i 1 "ABCDEFGHIJKLMNOPQRSTUVWXYZ") 26;

    escapeRegex = builtins.replaceStrings ([
      "\\"
      "["
      "{"
      "("
      ")"
      "^"
      "$"
      "?"
      "*"
      "+"
      "|"
      "."
    ]) (map (c: "\\" + c) [
      "\\"
      "["
      "{"
      "("
      ")"
      "^"
      "$"
      "?"
      "*"
      "+"
      "|"
      "."
    ]);
    # As nixpkgs: the pieces keep the string context of the input.
    splitString =
      sep: s:
      let
        parts = builtins.split (escapeRegex (toString sep)) (toString s);
      in
      map (p: addContextFrom s p) (filter isString parts);
    addContextFrom = src: target: builtins.substring 0 0 src + target;

    escapeShellArg =
      arg:
      let
        s = toString arg;
      in
      if builtins.match "[[:alnum:],._+:@%/-]+" s != null then
        s
      else
        "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] s}'";
    escapeShellArgs = list: concatStringsSep " " (map escapeShellArg list);

    makeSearchPath =
      subDir: paths: concatStringsSep ":" (map (p: "${p}/${subDir}") (filter (x: x != null) paths));
    makeBinPath = makeSearchPath "bin";

    functionArgs = f: if f ? __functor then f.__functionArgs or (functionArgs (f.__functor f)) else builtins.functionArgs f;
    setFunctionArgs = f: args: {
      __functor = self: f;
      __functionArgs = args;
    };

    # As nixpkgs: the result gets .override (re-call with changed arguments).
    makeOverridable =
      f:
      let
        overridable =
          origArgs:
          let
            result = f origArgs;
            overrideWith = newArgs: origArgs // (if isFunction newArgs then newArgs origArgs else newArgs);
            # as nixpkgs (mirrorFunctionArgs): .override takes f's arguments
            override = setFunctionArgs (newArgs: overridable (overrideWith newArgs)) (functionArgs f);
          in
          if isAttrs result then
            result // { inherit override; }
          else if isFunction result then
            setFunctionArgs result (functionArgs result) // { inherit override; }
          else
            result;
      in
      setFunctionArgs overridable (functionArgs f);

    licenses.mit = {
      spdxId = "MIT";
      shortName = "mit";
      fullName = "MIT License";
      free = true;
    };

    platforms = rec {
      linux = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      darwin = [
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      unix = linux ++ darwin;
    };
  };
in
lib
